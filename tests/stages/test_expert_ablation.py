"""The expert-count ablation (experiments/expert_ablation): per-task validation loss, sweep composition,
the equal-size LoRA baseline, and the collector's table on hand-written reports."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import ROOT, compose
from pedgpt.losses.lm import task_nll_sums
from pedgpt.stages import get_stage
from pedgpt.stages.lora_baseline import LoRABaselineModule, adapter_shape, matching_rank, meta_model
from pedgpt.stages.module import adapter_settings, module_settings
from pedgpt.training.validate import validate

sys.path.insert(0, os.path.join(ROOT, "experiments", "expert_ablation"))
import collect  # noqa: E402

RUN_SH = Path(ROOT) / "experiments" / "expert_ablation" / "run.sh"


# -- per-task validation loss ------------------------------------------------------------------------
def test_task_nll_sums_by_hand():
    logp = torch.tensor([-2.0, -3.0, -4.0, -1.5])
    n = torch.tensor([1, 2, 4, 3])
    tasks = torch.tensor([0, 2, 0, 4])
    out = task_nll_sums(logp, n, tasks, 5)
    assert out.dtype == torch.float32 and out.shape == (2, 5)
    assert out.tolist() == [[6.0, 0.0, 3.0, 0.0, 1.5], [5.0, 0.0, 2.0, 0.0, 3.0]]


# -- the sweeps of run.sh compose, value by value -----------------------------------------------------
def sweep_values(key: str) -> list[str]:
    m = re.search(rf"{re.escape(key)}=(\S+)", RUN_SH.read_text())
    assert m, f"run.sh has no sweep over {key}"
    return m.group(1).split(",")


@pytest.fixture
def fake_export(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    return tmp_path


def test_run_sh_sweeps_the_expected_values():
    assert sweep_values("adapter.num_specific") == ["1", "2", "3", "4"]
    assert sweep_values("adapter.router") == ["noisy_token", "token", "task", "token_task_aux"]


@pytest.mark.parametrize("key", ["adapter.num_specific", "adapter.router"])
def test_every_sweep_value_composes_and_injects(key, fake_export, tiny_llama):
    from pedgpt.adapters import inject_moe_lora

    for value in sweep_values(key):
        cfg = compose(
            [
                "+experiment=mole_demo",
                f"{key}={value}",
                f"init_from={fake_export}",
                "hydra.sweep.dir=multirun/expert_ablation",
            ]
        )
        validate(cfg)
        assert list(cfg.pipeline) == ["mole"] and cfg.init_from == str(fake_export)
        kw = adapter_settings(cfg)
        assert str(kw[key.split(".")[1]]) == value
        model = inject_moe_lora(tiny_llama(layers=1), **kw)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert trainable > 0, value


# -- the equal-size LoRA ------------------------------------------------------------------------------
def test_matching_rank_rounds_to_the_nearest_size():
    sizes = [(10, 20), (30, 40)]  # 100 parameters per rank
    assert matching_rank(260, sizes) == 3
    assert matching_rank(640, sizes) == 6
    assert matching_rank(10, sizes) == 1


def test_baseline_variant_has_the_mole_runs_optimisation_settings(fake_export):
    cfg = validate(
        compose(
            [
                "+experiment=mole_demo",
                "pipeline=[lora_baseline]",
                f"init_from={fake_export}",
                "trainer.gradient_clip_val=0.5",
                "trainer.accumulate_grad_batches=2",
                "mole.warmup_steps=7",
                "mole.optimizer.lr=0.01",
            ]
        )
    )
    spec = get_stage("lora_baseline")(cfg)
    assert spec.key() == "mole" and "lora_baseline" not in cfg  # a variant: stage mole's settings, no copy

    def settings(module):
        plain = (int, float, str, bool, type(None), torch.dtype)
        out = {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, plain)}
        return {**out, "optimizer": (module.optimizer_factory.func, module.optimizer_factory.keywords)}

    moe = settings(get_stage("mole")(cfg).module(str(fake_export)))
    lora = settings(LoRABaselineModule(**module_settings(cfg, spec.key(), str(fake_export)), lora={"r": 4}))
    assert moe["warmup_steps"] == 7 and moe["optimizer"][1]["lr"] == 0.01
    assert {k: lora.get(k) for k in moe} == moe


def test_adapter_shape_counts_experts_and_routers(tmp_path):
    from transformers import LlamaConfig

    # hidden 64, intermediate 128, 4 heads / 2 kv heads (head dim 16): per layer Σ(d_in + d_out) =
    # q 128 + k 96 + v 96 + o 128 + gate 192 + up 192 + down 192 = 1024; Σ d_in = 6·64 + 128 = 512
    LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ).save_pretrained(tmp_path)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    base = dict(target_modules=targets, rank=2, alpha=4, num_universal=1)
    # 1u+2s token router: 3 experts · r 2 · 2048 + router (2 × d_in) · 1024 = 12288 + 2048
    model = meta_model(str(tmp_path))
    n, sizes = adapter_shape(model, {**base, "num_specific": 2, "router": "token"})
    assert n == 14336 and sum(i + o for i, o in sizes) == 2048
    assert matching_rank(n, sizes) == 7
    # 1u+1s task router: 2 · 2 · 2048 + (5 tasks × 1) logits on each of 14 linears
    n, _ = adapter_shape(model, {**base, "num_specific": 1, "router": "task"})
    assert n == 8192 + 70


# -- collect.py on hand-written runs --------------------------------------------------------------------
def write_run(
    run: Path, mole: dict, adapter: dict | None = None, metrics: list[dict] | None = None, baseline: dict | None = None
) -> None:
    run.mkdir(parents=True)
    stage = "lora_baseline" if baseline else "mole"
    report = {"pipeline": [stage], stage: {**mole, "baseline": baseline} if baseline else mole}
    (run / "report.json").write_text(json.dumps(report))
    if adapter:
        (run / ".hydra").mkdir()
        (run / ".hydra" / "config.yaml").write_text("adapter:\n" + "".join(f"  {k}: {v}\n" for k, v in adapter.items()))
    if metrics:
        (run / stage).mkdir()
        keys = sorted(set().union(*metrics))
        with open(run / stage / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(metrics)


@pytest.fixture
def fake_sweep(tmp_path):
    sweep = tmp_path / "expert_ablation"
    ad = dict(name="moe_lora", rank=8, alpha=16, num_universal=1, router="noisy_token")
    write_run(
        sweep / "0",
        {
            "val_loss": 2.5,
            "val_loss_by_task": {"medkqa": 2.0, "evidiag": 3.0},
            "params_trainable": 1000,
            "params_total": 200000,
            "wall_seconds": 12.0,
            "steps": 4,
            "router_entropy": 0.25,
            "router_weights": {"medkqa": [1.0], "evidiag": [1.0]},
        },
        {**ad, "num_specific": 1},
        metrics=[
            {"step": 0, "train/step_time": 0.1},
            {"step": 1, "train/step_time": 0.3},
            {"step": 2, "train/step_time": 0.2},
            {"step": 3, "val/loss": 2.5},
        ],
    )
    # no val_loss_by_task in the report: the last val/loss/<task> values of metrics.csv; no step times there
    write_run(
        sweep / "1",
        {
            "val_loss": 2.25,
            "params_trainable": 1500,
            "params_total": 200500,
            "wall_seconds": 12.0,
            "steps": 4,
            "router_entropy": 0.5,
            "router_weights": {"medkqa": [0.3, 0.7], "evidiag": [0.6, 0.4]},
        },
        {**ad, "num_specific": 2},
        metrics=[
            {"step": 1, "val/loss/medkqa": 9.0, "val/loss/evidiag": 9.0},
            {"step": 3, "val/loss/medkqa": 1.75, "val/loss/evidiag": 2.75},
        ],
    )
    (sweep / "multirun.yaml").write_text("")  # not a job directory
    base = tmp_path / "lora"
    write_run(
        base,
        {
            "val_loss": 2.4,
            "val_loss_by_task": {"medkqa": 2.1, "evidiag": 2.7},
            "params_trainable": 1200,
            "params_total": 200200,
            "wall_seconds": 6.0,
            "steps": 4,
        },
        baseline={"kind": "peft_lora", "rank": 12},
    )
    return sweep, base


def test_collect_table_by_hand(fake_sweep, tmp_path):
    sweep, base = fake_sweep
    rows = collect.collect([sweep], base)
    md = collect.to_markdown(rows).splitlines()
    assert md[0] == (
        "| config | sweep | num_specific | router | val medkqa | val evidiag | val_loss | trainable_pct "
        "| step_ms | router_entropy | top_expert |"
    )
    # 1000/200000 = 0.5 %; median(100, 300, 200) ms = 200 ms
    assert md[2] == (
        "| MoE-LoRA 1u+1s r=8 noisy_token | expert_ablation | 1 | noisy_token | 2.0000 | 3.0000 | 2.5000 "
        "| 0.5000 | 200.0000 | 0.2500 | medkqa:e0/1.00 evidiag:e0/1.00 |"
    )
    # 1500/200500 = 0.7481 %; 12 s / 4 steps = 3000 ms
    assert md[3] == (
        "| MoE-LoRA 1u+2s r=8 noisy_token | expert_ablation | 2 | noisy_token | 1.7500 | 2.7500 | 2.2500 "
        "| 0.7481 | 3000.0000 | 0.5000 | medkqa:e1/0.70 evidiag:e0/0.60 |"
    )
    # 1200/200200 = 0.5994 %; 6 s / 4 = 1500 ms
    assert md[4] == "| peft LoRA r=12 | baseline |  |  | 2.1000 | 2.7000 | 2.4000 | 0.5994 | 1500.0000 |  |  |"
    assert len(md) == 5

    collect.write_csv(rows, tmp_path / "t.csv")
    back = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["config"] for r in back] == [
        "MoE-LoRA 1u+1s r=8 noisy_token",
        "MoE-LoRA 1u+2s r=8 noisy_token",
        "peft LoRA r=12",
    ]
    assert float(back[1]["medkqa"]) == 1.75 and float(back[2]["step_ms"]) == 1500.0


def test_collect_cli_writes_table_csv_and_plot(fake_sweep, tmp_path):
    sweep, base = fake_sweep
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(RUN_SH.parent / "collect.py"), str(sweep), "--baseline", str(base), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert (out / "ablation.md").read_text().count("\n") == 5
    assert len(list(csv.DictReader(open(out / "ablation.csv")))) == 3
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_collect_names_an_unfinished_sweep(tmp_path):
    with pytest.raises(FileNotFoundError, match="no <n>/report.json"):
        collect.collect([tmp_path], None)


# -- tiny end to end: one mole job of the multirun, the baseline on its start, collected ------------------
@pytest.mark.slow
def test_tiny_sweep_job_and_baseline_collect(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PEDGPT_CACHE_DIR": str(tmp_path / "cache")}
    short = [
        "trainer.max_steps=2",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=2",
        "progress_bar=false",
    ]
    sweep = tmp_path / "expert_ablation"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.train",
            "-m",
            "+experiment=mole_demo",
            "adapter.num_specific=1",
            f"hydra.sweep.dir={sweep}",
            *short,
        ],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    init = json.load(open(sweep / "0" / "report.json"))["init_dir"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.train",
            "+experiment=mole_demo",
            "pipeline=[lora_baseline]",
            "adapter.num_specific=1",
            f"init_from={init}",
            f"hydra.run.dir={tmp_path / 'lora'}",
            *short,
        ],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    moe, lora = collect.collect([sweep], tmp_path / "lora")
    tasks = {"medkqa", "evidiag", "trerecom"}
    assert tasks <= set(moe) and tasks <= set(lora)
    assert all(0 < moe[t] < 20 and 0 < lora[t] < 20 for t in tasks)
    assert moe["num_specific"] == 1 and lora["config"].startswith("peft LoRA r=")
    # equal trainable size: within half a LoRA rank step of the MoE adapter
    assert abs(lora["trainable_pct"] - moe["trainable_pct"]) < 0.5 * moe["trainable_pct"] / 16


def test_collect_adds_the_generation_scores_of_each_run(tmp_path):
    sweep = tmp_path / "sweep"
    gen = {"step": 4, "overall": {"rougeL": 12.5, "bleu4": 3.25, "gleu": 4.0, "distinct2": 60.0}, "by_task": {}}
    write_run(
        sweep / "0",
        {
            "val_loss": 2.0,
            "params_trainable": 10,
            "params_total": 100,
            "wall_seconds": 1.0,
            "steps": 1,
            "gen_scores": gen,
        },
        adapter=dict(name="moe_lora", rank=8, alpha=16, num_universal=1, num_specific=1, router="token"),
    )
    (row,) = collect.collect([sweep], None)
    assert collect.columns([row])[-4:] == ["gen_rougeL", "gen_bleu4", "gen_gleu", "gen_distinct2"]
    assert (row["gen_rougeL"], row["gen_distinct2"]) == (12.5, 60.0)
