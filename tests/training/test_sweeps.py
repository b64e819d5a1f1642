"""Sweeps that line up: every multirun invocation gets a fresh folder and W&B group, each job a name and tags
carrying the overrides the sweep varies; a multirun that would need Lightning to start several processes per job
is refused at startup with one line (use torchrun)."""

import json
import os
import subprocess
import sys

import pytest

from pedgpt.config.sweep import SWEEP_ID_ENV, sweep_id, swept_keys, swept_overrides
from pedgpt.training.loggers import run_name

TINY = [
    "model.arch.num_hidden_layers=1",
    "model.arch.hidden_size=32",
    "model.arch.intermediate_size=64",
    "model.vocab_size=400",
    "trainer.limit_val_batches=1",
    "progress_bar=false",
    "logger=csv",
    "gen.enabled=false",
]


def test_swept_keys_are_read_off_the_multirun_command_line():
    argv = [
        "+experiment=mole_demo",
        "adapter.num_specific=1,2,3",
        "init_from=/x/dfpo/export",
        "pipeline=[sft,dfpo]",
        "+adapter.router_kwargs.top_k=range(1,3)",
        "hydra.sweep.dir=d,e",
    ]
    assert swept_keys(argv) == ["adapter.num_specific", "adapter.router_kwargs.top_k"]
    job = [
        "+experiment=mole_demo",
        "adapter.num_specific=3",
        "init_from=/x/dfpo/export",
        "pipeline=[sft,dfpo]",
        "+adapter.router_kwargs.top_k=2",
    ]
    assert swept_overrides(job, argv) == ["adapter.num_specific=3", "adapter.router_kwargs.top_k=2"]


def test_run_names_carry_the_swept_overrides():
    assert run_name("mole_demo-x", "mole", ["adapter.num_specific=3"]) == "mole num_specific=3"
    assert run_name("run-42", "sft", []) == "run-42-sft"


def test_the_sweep_id_is_made_once_and_shared_through_the_environment(monkeypatch):
    monkeypatch.delenv(SWEEP_ID_ENV, raising=False)
    for key in ("TORCHELASTIC_RUN_ID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    first = sweep_id()
    assert os.environ[SWEEP_ID_ENV] == first and sweep_id() == first
    monkeypatch.delenv(SWEEP_ID_ENV)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc123")  # torchrun's ranks agree without talking
    assert sweep_id() == "abc123"


def multirun(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != SWEEP_ID_ENV}
    env.update({"PEDGPT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "pedgpt.train", "-m", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_multirun_with_several_processes_per_job_is_refused_at_startup(tmp_path):
    proc = multirun(
        tmp_path,
        "+experiment=sft_demo",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "sft.optimizer.lr=1e-3,2e-3",
        *TINY,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and any("launch the sweep with torchrun" in line for line in lines), proc.stderr[-800:]
    assert not list(tmp_path.rglob("report.json"))  # refused before any job trained


@pytest.mark.slow
def test_each_sweep_invocation_gets_a_fresh_group_and_distinctly_named_jobs(tmp_path):
    args = ["+experiment=sft_demo", "trainer.max_steps=1", "sft.optimizer.lr=1e-3,2e-3", *TINY]
    groups = []
    for _ in range(2):
        proc = multirun(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        sweeps = sorted((tmp_path / "multirun").iterdir())
        new = sweeps[-1]
        reports = [json.loads((new / job / "report.json").read_text()) for job in ("0", "1")]
        assert {r["group"] for r in reports} == {new.name}
        # Hydra hands each job the value as it parsed it (1e-3 -> 0.001); the name and tags use that form
        assert [r["sweep"] for r in reports] == [["sft.optimizer.lr=0.001"], ["sft.optimizer.lr=0.002"]]
        groups.append(new.name)
    assert len(set(groups)) == 2 and len(list((tmp_path / "multirun").iterdir())) == 2  # no folder reused
    assert all(g.startswith("sft_demo-") for g in groups)
