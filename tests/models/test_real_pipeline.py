"""Every stage and tool on every real family, on tiny random checkpoints in the official download layouts (written
by pedgpt's own writer): the four stages with packing from the downloaded directory, resume, evaluate, chat,
serve, judge with a local model, export (adapter, merged per task) and the way back to the official layout read
by an independent forward; FSDP2 with 2 gloo processes on the ALiBi model."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest
import torch
from fastapi.testclient import TestClient

from helpers import ROOT, compose
from helpers.baichuan2_reference import reference_logits
from pedgpt.adapters import set_task_ids
from pedgpt.evaluation.judging.backends import HFJudge
from pedgpt.evaluation.run import evaluate_export
from pedgpt.inference.chat import chat_loop
from pedgpt.inference.generation import PRESETS, GenerationSettings
from pedgpt.inference.server import create_app
from pedgpt.models.baichuan2.convert import native_to_official
from pedgpt.models.exports import load_for_inference
from pedgpt.models.tiny_checkpoints import write_tiny
from pedgpt.training.checkpoint_export import export_checkpoint
from pedgpt.training.pipeline import run_pipeline
from pedgpt.training.validate import validate

pytestmark = pytest.mark.slow

FAMILIES = {  # family → (model config, router of its MoE-LoRA stage)
    "baichuan2_7b": ("baichuan2_7b", "task"),  # a task router: the adapter can be merged per task
    "baichuan2_13b": ("baichuan2_13b", "noisy_token"),
    "qwen2_5": ("qwen2_5_7b", "token_task_aux"),
}
SHORT = [
    "trainer.max_steps=2",
    "checkpoint_every_n_steps=1",
    "trainer.log_every_n_steps=1",
    "logger=csv",
    "progress_bar=false",
    "trainer.limit_val_batches=2",
    "gen.max_new_tokens=4",
    "gen.samples_per_task=1",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """family → (official dir, run dir, report) of a four-stage run straight from the downloaded layout."""
    pytest.importorskip("sentencepiece")
    root, cache, out = tmp_path_factory.mktemp("real"), tmp_path_factory.mktemp("real-cache"), {}
    for family, (model, router) in FAMILIES.items():
        official = write_tiny(family, str(root / f"{family}-official"), seed=3)
        cfg = validate(
            compose(
                [
                    f"model={model}",
                    f"model.path={official}",
                    f"paths.cache_dir={cache}",
                    f"adapter.router={router}",
                    *SHORT,
                ]
            )
        )
        run = root / f"{family}-run"
        out[family] = (official, str(run), run_pipeline(cfg, str(run)))
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_four_stages_run_from_the_downloaded_layout(runs, family):
    _, run, report = runs[family]
    assert report["pipeline"] == ["cpt", "sft", "dfpo", "mole"]
    for stage in report["pipeline"]:
        assert report[stage]["steps"] == 2 and report[stage]["val_loss"] == report[stage]["val_loss"], stage
        assert os.path.exists(os.path.join(run, stage, "export", "pedgpt_complete.json"))
    assert report["cpt"]["data"]["train_packing_efficiency"] > 0.5  # packing on for CPT and SFT
    assert report["sft"]["data"]["train_packing_efficiency"] > 0.5
    tok_cfg = json.load(open(os.path.join(run, "sft", "export", "tokenizer_config.json")))
    assert tok_cfg["pedgpt_template"] == ("chatml" if family == "qwen2_5" else "baichuan2")
    if family != "qwen2_5":  # the sentencepiece model travels with every export (the way back needs it)
        assert os.path.exists(os.path.join(run, "sft", "export", "tokenizer.model"))
    assert report["mole"]["gen_scores"]["overall"]  # generation scores while training, on the real family


def test_the_way_back_to_the_official_layout_is_read_by_an_independent_forward(runs, tmp_path):
    _, run, _ = runs["baichuan2_13b"]
    back = native_to_official(os.path.join(run, "sft", "export"), str(tmp_path / "official-again"))
    cfg = json.load(open(os.path.join(back, "config.json")))
    assert cfg["model_type"] == "baichuan" and "max_position_embeddings" not in cfg  # still the ALiBi model
    ids = torch.randint(3, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    native = load_for_inference(os.path.join(run, "sft", "export"), dtype=torch.float32).model
    with torch.no_grad():
        ours = native(input_ids=ids).logits
    assert (ours - reference_logits(back, ids)).abs().max() < 1e-4


@pytest.mark.parametrize("family", list(FAMILIES))
def test_evaluate_chat_and_serve_on_the_final_adapter_export(runs, family, tmp_path):
    _, run, _ = runs[family]
    final = os.path.join(run, "mole", "export")
    summary = evaluate_export(
        final, ["medkqa", "preference"], None, str(tmp_path / "eval"), limit=2, generation={"max_new_tokens": 4}
    )
    assert summary["suites"]["medkqa"]["n"] == 2 and "reward_accuracy" in summary["suites"]["preference"]
    loaded = load_for_inference(final)
    out = io.StringIO()
    chat_loop(
        loaded,
        GenerationSettings(max_new_tokens=4),
        task="medkqa",
        stdin=io.StringIO("孩子咳嗽三天了怎么办？\n"),
        stdout=out,
    )
    assert "助手> " in out.getvalue()
    with TestClient(create_app(loaded, default_task="medkqa", settings=PRESETS["greedy"])) as client:
        messages = [{"role": "user", "content": "宝宝发烧38度怎么办？"}]
        r = client.post("/v1/chat/completions", json={"model": "m", "max_tokens": 4, "messages": messages})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0


def test_judge_with_a_local_baichuan2_model(runs):
    _, run, _ = runs["baichuan2_13b"]
    judge = HFJudge(os.path.join(run, "sft", "export"), max_new_tokens=4, batch_size=2)
    replies = judge.judge(["回答A：多喝水。回答B：立即就医。哪个更好？", "比较两个回答。"])
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)


def test_export_an_adapter_and_an_adapter_merged_for_a_task(runs, tmp_path):
    _, run, _ = runs["baichuan2_7b"]  # its MoE-LoRA stage routes by task
    ckpt = os.path.join(run, "mole", "checkpoints", "step=2.ckpt")
    adapter = export_checkpoint(ckpt, str(tmp_path / "adapter"))
    merged = export_checkpoint(ckpt, str(tmp_path / "merged"), merge_task="evidiag")
    ids = torch.randint(3, 300, (1, 10), generator=torch.Generator().manual_seed(1))
    with_adapter = load_for_inference(adapter)
    set_task_ids(with_adapter.model, ["evidiag"])
    plain = load_for_inference(merged).model
    with torch.no_grad():
        a, b = with_adapter.model(input_ids=ids).logits, plain(input_ids=ids).logits
    assert (a - b).abs().max() < 1e-4


def test_resume_a_real_family_stage_from_its_checkpoint(runs, tmp_path):
    official, run, report = runs["baichuan2_13b"]
    ckpt = os.path.join(run, "sft", "checkpoints", "step=1.ckpt")
    cfg = validate(
        compose(
            [
                "model=baichuan2_13b",
                f"model.path={official}",
                "pipeline=[sft]",
                f"init_from={os.path.join(run, 'cpt', 'export')}",
                f"ckpt_path='{ckpt}'",
                f"paths.cache_dir={tmp_path / 'cache'}",
                *SHORT,
            ]
        )
    )
    resumed = run_pipeline(cfg, str(tmp_path / "resumed"))
    assert resumed["sft"]["resumed_from"] == ckpt and resumed["sft"]["steps"] == 2

    def losses(stage_dir):
        rows = csv.DictReader(open(os.path.join(stage_dir, "metrics.csv")))
        return {int(r["step"]): r["train/loss"] for r in rows if r.get("train/loss")}

    original, after = losses(os.path.join(run, "sft")), losses(os.path.join(tmp_path / "resumed", "sft"))
    assert set(original) == {0, 1} and set(after) == {1}, (original, after)
    assert after[1] == original[1]  # the step after the checkpoint: the same loss, to the last digit


@pytest.mark.distributed
def test_fsdp2_two_processes_on_the_alibi_model(runs, tmp_path):
    official, _, _ = runs["baichuan2_13b"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PEDGPT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.train",
            "+experiment=sft_13b",
            f"model.path={official}",
            "trainer=fsdp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_steps=2",
            "sft.max_len=256",
            "sft.batch_size=2",
            "logger=csv",
            "progress_bar=false",
            "gen.max_new_tokens=4",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["sft"]["steps"] == 2
    assert os.path.exists(tmp_path / "run" / "sft" / "export" / "model.safetensors")
