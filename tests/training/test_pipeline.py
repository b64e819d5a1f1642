"""The pipeline end to end on the tiny model: every stage runs, hands off through HF exports, reports."""

import json
import os

import pytest
import torch

from helpers import compose
from pedgpt.training.pipeline import run_pipeline
from pedgpt.training.validate import validate

SHORT = [
    "trainer.max_steps=3",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=2",
    "progress_bar=false",
    "logger=csv",
]


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    run = tmp_path_factory.mktemp("demo")
    cache = tmp_path_factory.mktemp("cache")
    cfg = compose(SHORT + [f"paths.cache_dir={cache}"])
    validate(cfg)
    return run_pipeline(cfg, str(run)), run, cfg


def test_short_demo_runs_all_four_stages(short_demo):
    report, run, _ = short_demo
    assert report["pipeline"] == ["cpt", "sft", "dfpo", "mole"]
    on_disk = json.load(open(run / "report.json"))
    assert (run / "report.md").exists()
    for stage in ("cpt", "sft", "dfpo", "mole"):
        r = on_disk[stage]
        for key in ("train_loss_first", "train_loss_last", "val_loss", "export_dir", "wall_seconds"):
            assert key in r, (stage, key)
        assert r["steps"] == 3
        assert os.path.exists(run / stage / "metrics.csv")
        assert r["export_dir"] == str(run / stage / "export")
    from pedgpt.data.corpus.demo import build_demo_corpus

    dev_pairs = [p for p in build_demo_corpus(0)["preference"] if p.split == "dev"]
    assert on_disk["dfpo"]["val_pairs"] == len(dev_pairs) - sum(on_disk["dfpo"]["data"]["skipped"].values()) >= 64
    assert 0 <= on_disk["dfpo"]["val_reward_accuracy"] <= 1
    weights = on_disk["mole"]["router_weights"]
    assert {"medkqa", "evidiag", "trerecom"} <= set(weights)
    assert all(len(w) == 3 and abs(sum(w) - 1) < 1e-4 for w in weights.values())


def test_each_stage_starts_from_the_previous_export(short_demo):
    report, run, _ = short_demo
    chain = [report["init_dir"]] + [report[s]["export_dir"] for s in ("cpt", "sft", "dfpo")]
    for stage, parent in zip(("cpt", "sft", "dfpo", "mole"), chain):
        info = json.load(open(run / stage / "export" / "pedgpt_complete.json"))
        assert info["init_dir"] == os.path.abspath(parent)


def test_full_exports_load_and_mole_export_is_an_adapter(short_demo):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pedgpt.models.exports import load_for_inference

    report, run, _ = short_demo
    m = AutoModelForCausalLM.from_pretrained(report["dfpo"]["export_dir"])
    tok = AutoTokenizer.from_pretrained(report["dfpo"]["export_dir"])
    ids = tok("宝宝发烧了", return_tensors="pt")["input_ids"]
    assert torch.isfinite(m(ids).logits).all()
    loaded = load_for_inference(report["mole"]["export_dir"])
    assert loaded.has_adapter and loaded.model_dir == report["dfpo"]["export_dir"]


def test_metrics_csv_has_the_architecture_metric_names(short_demo):
    import csv

    _, run, _ = short_demo
    cols = set(next(csv.reader(open(run / "dfpo" / "metrics.csv"))))
    for name in (
        "train/loss",
        "val/loss",
        "train/rewards/chosen",
        "train/rewards/margins",
        "train/rewards/accuracies",
        "train/logps/chosen",
        "val/rewards/accuracies",
    ):
        assert name in cols, name
    cols = set(next(csv.reader(open(run / "mole" / "metrics.csv"))))
    assert {"train/router/load_e0", "model/params_total", "model/params_trainable"} <= cols


def test_reference_cache_is_reused_by_a_second_run(short_demo, tmp_path):
    _, run, cfg = short_demo
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.pipeline = ["dfpo"]
        cfg.init_from = str(run / "sft" / "export")
    report = run_pipeline(cfg, str(tmp_path))
    assert report["dfpo"]["reference_cache"] == "hit"


@pytest.mark.slow
def test_full_demo_meets_its_targets(tmp_path):
    """The no-override demo: every loss falls and DFPO's held-out reward accuracy exceeds 0.5."""
    cfg = compose(["progress_bar=false", f"paths.cache_dir={tmp_path / 'cache'}"])
    report = run_pipeline(cfg, str(tmp_path / "run"))
    for s in ("cpt", "sft", "dfpo", "mole"):
        assert report[s]["train_loss_last"] < report[s]["train_loss_first"], s
    assert report["dfpo"]["val_reward_accuracy"] > 0.5 and report["dfpo"]["val_pairs"] >= 64
