"""W&B: offline without an account, one run per stage (job_type = stage, group = the pipeline run)."""

import os
import sys

import pytest

from helpers import ROOT, compose

wandb = pytest.importorskip("wandb")


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    for k in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, so no account configured
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_mode_is_offline_unless_configured(offline_env, monkeypatch):
    from pedgpt.training.loggers import wandb_mode

    assert wandb_mode(None) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(None) == "online"
    assert wandb_mode("disabled") == "disabled"


def test_one_offline_run_per_stage_with_job_type_group_and_config(offline_env, tmp_path):
    from pedgpt.training.loggers import build_loggers, close_loggers

    cfg = compose(["logger=wandb"])
    seen = []
    for stage in ("sft", "dfpo"):
        (lg,) = build_loggers(cfg, stage, str(tmp_path), group="run-42")
        exp = lg.experiment
        seen.append(exp.id)
        assert exp.job_type == stage and exp.group == "run-42"
        assert exp.config["sft"]["max_steps"] == cfg.sft.max_steps
        lg.log_metrics({"train/loss": 1.0}, step=1)
        close_loggers([lg])
        assert wandb.run is None
        assert any(d.startswith("offline-run-") for d in os.listdir(tmp_path / stage / "wandb"))
    assert seen[0] != seen[1]
    (lg,) = build_loggers(cfg, "dfpo", str(tmp_path), group="run-42", resume_step=2)  # a resumed stage
    assert lg.experiment.id == seen[1]  # continues its W&B run
    close_loggers([lg])


def test_a_sweep_job_is_named_and_tagged_by_its_swept_overrides(offline_env, tmp_path):
    from pedgpt.training.loggers import build_loggers, close_loggers

    cfg = compose(["logger=wandb"])
    (lg,) = build_loggers(cfg, "mole", str(tmp_path), group="mole_demo-2026", swept=["adapter.num_specific=3"])
    exp = lg.experiment
    assert exp.name == "mole num_specific=3" and exp.group == "mole_demo-2026"
    assert {"mole", "adapter.num_specific=3"} <= set(exp.tags)
    close_loggers([lg])


def test_dashboard_report_uses_the_logged_metric_names():
    sys.path.insert(0, os.path.join(ROOT, "experiments"))
    pytest.importorskip("wandb_workspaces")
    from wandb_dashboard import build_report

    report = build_report("me", "pedgpt", "g")
    text = repr(report.blocks)
    for name in ("train/loss", "val/rewards/accuracies", "train/router/load_e0", "val/router/heatmap", "val/gen/"):
        assert name in text
