"""Fault tolerance: crash / kill -9 / SIGTERM / full disk mid-run, then `ckpt_path=last` resumes bit-exact.

Every in-process run uses a tiny SFT config (one decoder layer, hidden 32, 12 steps, a checkpoint every
4 steps). The reference is an uninterrupted run of the same config; a resumed run must log the same
``train/loss`` string for every step, each step exactly once.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys

import lightning as L
import pytest
import torch

from helpers import ROOT
from helpers.runs import SFT, TINY, loss_rows, tiny_cfg
from pedgpt.common.errors import CheckpointError, NonFiniteError
from pedgpt.stages.module import CausalLMModule
from pedgpt.training import pipeline
from pedgpt.training.callbacks import Throughput
from pedgpt.training.checkpointing import verify_checkpoint


def ckpt_names(stage_dir):
    d = os.path.join(stage_dir, "checkpoints")
    return sorted(n for n in os.listdir(d) if not n.endswith(".sha256.json")) if os.path.isdir(d) else []


def crash_at(step, exc=RuntimeError):
    """A Throughput callback that raises once the trainer reaches optimizer step ``step``."""

    class CrashingThroughput(Throughput):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if trainer.global_step == step:
                raise exc(f"simulated crash at step {step}")
            super().on_train_batch_end(trainer, pl_module, *args)

    return CrashingThroughput


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, cache_dir):
    run = tmp_path_factory.mktemp("baseline")
    pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT), str(run))
    return run


def test_uninterrupted_run_logs_each_step_once_and_keeps_the_last_two_checkpoints(baseline):
    rows = loss_rows(baseline / "sft")
    assert [s for s, _ in rows] == list(range(12))
    assert ckpt_names(baseline / "sft") == ["last", "step=12.ckpt", "step=8.ckpt"]
    assert (baseline / "sft" / "checkpoints" / "last").read_text() == "step=12.ckpt"


@pytest.mark.parametrize("crash_step", [9, 10])
def test_crash_then_resume_reproduces_every_loss(baseline, cache_dir, tmp_path, monkeypatch, crash_step):
    monkeypatch.setattr(pipeline, "Throughput", crash_at(crash_step))
    with pytest.raises(RuntimeError, match=f"simulated crash at step {crash_step}"):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT), str(tmp_path))
    assert ckpt_names(tmp_path / "sft") == ["last", "step=4.ckpt", "step=8.ckpt"]
    monkeypatch.setattr(pipeline, "Throughput", Throughput)
    report = pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT, "ckpt_path=last"), str(tmp_path))
    assert report["sft"]["resumed_from"] == str(tmp_path / "sft" / "checkpoints" / "step=8.ckpt")
    assert loss_rows(tmp_path / "sft") == loss_rows(baseline / "sft")  # same strings, no step missing or twice
    assert ckpt_names(tmp_path / "sft") == ["last", "step=12.ckpt", "step=8.ckpt"]
    ours = torch.load(tmp_path / "sft" / "checkpoints" / "step=12.ckpt", weights_only=True)["state_dict"]
    theirs = torch.load(baseline / "sft" / "checkpoints" / "step=12.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_crash_inside_an_accumulation_window_then_resume_reproduces_every_loss(cache_dir, tmp_path, monkeypatch):
    """Accumulate 2 micro-batches per step, the epoch's tail stepping alone; a crash in the middle of a window's
    micro-batches (after the step-8 checkpoint) resumes from that checkpoint with identical losses."""
    acc = (*SFT, "trainer.accumulate_grad_batches=2")
    full = tmp_path / "full"
    pipeline.run_pipeline(tiny_cfg(cache_dir, *acc), str(full))
    calls, original = [], CausalLMModule.compute_loss

    def crash_in_window(self, batch, split, normaliser):
        if split == "train":
            calls.append(1)
            if len(calls) == 19:  # the 2nd micro-batch of the 10th window (each step here is a full window)
                raise RuntimeError("simulated crash inside a window")
        return original(self, batch, split, normaliser)

    monkeypatch.setattr(CausalLMModule, "compute_loss", crash_in_window)
    run = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="inside a window"):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *acc), str(run))
    monkeypatch.setattr(CausalLMModule, "compute_loss", original)
    report = pipeline.run_pipeline(tiny_cfg(cache_dir, *acc, "ckpt_path=last"), str(run))
    assert report["sft"]["resumed_from"].endswith("step=8.ckpt")
    assert loss_rows(run / "sft") == loss_rows(full / "sft")
    assert [s for s, _ in loss_rows(full / "sft")] == list(range(12))  # one logged loss per optimizer step


def test_checkpoints_load_with_weights_only_and_hold_rng_and_data_position(baseline):
    ckpt = torch.load(baseline / "sft" / "checkpoints" / "step=8.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 8
    assert set(ckpt["pedgpt"]["rng"]) == {"python", "numpy", "torch", "cuda"}
    dm_state = ckpt["ExamplesDataModule"]
    assert dm_state["samples_consumed"] == 16  # 8 batches of 2
    assert ckpt["optimizer_states"] and ckpt["lr_schedulers"][0]["last_epoch"] == 8


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(baseline, cache_dir, tmp_path, monkeypatch):
    original = L.Trainer.save_checkpoint

    def disk_fills_up_at_step_8(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        if self.global_step == 8:  # leave half a file behind, as a full disk does
            with open(filepath, "r+b") as f:
                f.truncate(os.path.getsize(filepath) // 2)
            raise OSError(errno.ENOSPC, "No space left on device", str(filepath))

    monkeypatch.setattr(L.Trainer, "save_checkpoint", disk_fills_up_at_step_8)
    with pytest.raises(OSError, match="No space left on device"):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT), str(tmp_path))
    assert ckpt_names(tmp_path / "sft") == ["last", "step=4.ckpt"]  # no .tmp- leftover, no step=8
    assert (tmp_path / "sft" / "checkpoints" / "last").read_text() == "step=4.ckpt"
    verify_checkpoint(str(tmp_path / "sft" / "checkpoints" / "step=4.ckpt"))
    monkeypatch.setattr(L.Trainer, "save_checkpoint", original)
    report = pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT, "ckpt_path=last"), str(tmp_path))
    assert report["sft"]["resumed_from"].endswith("step=4.ckpt")
    assert loss_rows(tmp_path / "sft") == loss_rows(baseline / "sft")


def test_truncated_newest_checkpoint_is_a_clear_error_naming_the_file(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "Throughput", crash_at(6))
    with pytest.raises(RuntimeError):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT), str(tmp_path))
    ckpt = tmp_path / "sft" / "checkpoints" / "step=4.ckpt"
    with open(ckpt, "r+b") as f:
        f.truncate(1000)
    monkeypatch.setattr(pipeline, "Throughput", Throughput)
    with pytest.raises(
        CheckpointError, match=rf"^no checkpoint in {ckpt.parent} verifies; the newest: {ckpt}: 1000 bytes"
    ):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT, "ckpt_path=last"), str(tmp_path))


def test_four_stage_pipeline_resumes_at_the_stage_where_it_stopped(cache_dir, tmp_path, monkeypatch):
    short = [
        "trainer.max_steps=4",
        "checkpoint_every_n_steps=2",
        "dfpo.batch_size=2",
        "dfpo.val_batch_size=4",
        "cpt.batch_size=2",
        "cpt.max_len=64",
        "mole.batch_size=2",
        "mole.max_len=128",
    ]

    class CrashInDFPO(Throughput):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if pl_module.stage_name == "dfpo" and trainer.global_step == 3:
                raise RuntimeError("simulated crash in dfpo")
            super().on_train_batch_end(trainer, pl_module, *args)

    monkeypatch.setattr(pipeline, "Throughput", CrashInDFPO)
    with pytest.raises(RuntimeError, match="simulated crash in dfpo"):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *short), str(tmp_path))
    done = {s: (tmp_path / s / "result.json").stat().st_mtime_ns for s in ("cpt", "sft")}
    monkeypatch.setattr(pipeline, "Throughput", Throughput)
    ran = []
    real_run_stage = pipeline.run_stage
    monkeypatch.setattr(pipeline, "run_stage", lambda name, *a, **k: ran.append(name) or real_run_stage(name, *a, **k))
    report = pipeline.run_pipeline(tiny_cfg(cache_dir, *short, "ckpt_path=last"), str(tmp_path))
    assert ran == ["dfpo", "mole"]
    assert {s: (tmp_path / s / "result.json").stat().st_mtime_ns for s in ("cpt", "sft")} == done
    assert report["dfpo"]["resumed_from"] == str(tmp_path / "dfpo" / "checkpoints" / "step=2.ckpt")
    assert report["mole"]["resumed_from"] is None and report["mole"]["steps"] == 4
    assert [s for s, _ in loss_rows(tmp_path / "dfpo")] == [0, 1, 2, 3]


# -- the non-finite guard -------------------------------------------------------------------------------
def nan_on_calls(monkeypatch, bad_calls):
    """Patch the stage's loss so that the training calls numbered in ``bad_calls`` (1-based) return NaN."""
    original, calls = CausalLMModule.compute_loss, []

    def compute_loss(self, batch, split, normaliser):
        out = original(self, batch, split, normaliser)
        if split == "train":
            calls.append(1)
            if len(calls) in bad_calls:
                out.loss = out.loss * float("nan")  # keeps the graph: the gradients are NaN too
        return out

    monkeypatch.setattr(CausalLMModule, "compute_loss", compute_loss)
    return calls


def test_skipped_steps_count_neither_toward_max_steps_nor_the_lr_schedule(cache_dir, tmp_path, monkeypatch):
    calls = nan_on_calls(monkeypatch, {3, 6})
    cfg = tiny_cfg(cache_dir, "+experiment=sft_demo", "trainer.max_steps=8", "checkpoint_every_n_steps=8")
    report = pipeline.run_pipeline(cfg, str(tmp_path))
    assert report["sft"]["steps"] == 8 and len(calls) == 10
    ckpt = torch.load(tmp_path / "sft" / "checkpoints" / "step=8.ckpt", weights_only=True)
    assert int(ckpt["optimizer_states"][0]["state"][0]["step"]) == 8  # AdamW really stepped 8 times
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 8  # a skipped step must not advance warmup/cosine


def test_nonfinite_steps_are_skipped_and_counted_and_the_weights_stay_finite(cache_dir, tmp_path, monkeypatch):
    nan_on_calls(monkeypatch, {3, 6})
    report = pipeline.run_pipeline(tiny_cfg(cache_dir, "+experiment=sft_demo", "trainer.max_steps=8"), str(tmp_path))
    assert report["sft"]["nonfinite_skipped"] == 2
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "sft" / "export" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_too_many_nonfinite_steps_in_a_row_stop_the_run(cache_dir, tmp_path, monkeypatch):
    nan_on_calls(monkeypatch, set(range(5, 100)))
    cfg = tiny_cfg(
        cache_dir,
        "+experiment=sft_demo",
        "trainer.max_steps=12",
        "checkpoint_every_n_steps=4",
        "max_nonfinite_in_a_row=3",
    )
    with pytest.raises(
        NonFiniteError,
        match=r"^4 non-finite steps in a row \(max_nonfinite_in_a_row=3\); stopping\. "
        r"Lower the learning rate .*ckpt_path=last \(checkpoints are verified against their checksums before use\)$",
    ):
        pipeline.run_pipeline(cfg, str(tmp_path))
    assert (tmp_path / "sft" / "checkpoints" / "last").read_text() == "step=4.ckpt"
    verify_checkpoint(str(tmp_path / "sft" / "checkpoints" / "step=4.ckpt"))


def flip_bytes(path, n=4096):
    """XOR ``n`` bytes in the middle of ``path`` (the size stays; only the checksum can tell)."""
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        chunk = f.read(n)
        f.seek(-len(chunk), os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_checkpoints_carry_the_sha256_of_their_payload_and_rotation_removes_it(baseline):
    d = baseline / "sft" / "checkpoints"
    assert sorted(p.name for p in d.glob("*.sha256.json")) == ["step=12.ckpt.sha256.json", "step=8.ckpt.sha256.json"]
    verify_checkpoint(str(d / "step=12.ckpt"))


def test_flipped_bytes_in_the_newest_checkpoint_resume_from_the_newest_that_verifies(
    baseline, cache_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(pipeline, "Throughput", crash_at(10))
    with pytest.raises(RuntimeError, match="simulated crash"):
        pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT), str(tmp_path))
    damaged = tmp_path / "sft" / "checkpoints" / "step=8.ckpt"
    flip_bytes(damaged)
    with pytest.raises(CheckpointError, match=rf"^{damaged}: sha256 differs from its checksum record"):
        verify_checkpoint(str(damaged))
    with pytest.raises(CheckpointError, match=rf"^{damaged}: sha256 differs"):  # named explicitly: no fallback
        pipeline.resume_checkpoint(tiny_cfg(cache_dir, *SFT, f"ckpt_path='{damaged}'"), str(tmp_path / "sft"))
    monkeypatch.setattr(pipeline, "Throughput", Throughput)
    with caplog.at_level("WARNING", logger="pedgpt"):
        report = pipeline.run_pipeline(tiny_cfg(cache_dir, *SFT, "ckpt_path=last"), str(tmp_path))
    older = tmp_path / "sft" / "checkpoints" / "step=4.ckpt"
    assert report["sft"]["resumed_from"] == str(older)
    assert f"resuming from {older}, the newest checkpoint that verifies" in caplog.text
    assert f"{damaged}: sha256 differs" in caplog.text
    assert loss_rows(tmp_path / "sft") == loss_rows(baseline / "sft")


def test_no_checkpoint_that_verifies_is_one_line(baseline, cache_dir, tmp_path):
    d = tmp_path / "sft" / "checkpoints"
    shutil.copytree(baseline / "sft" / "checkpoints", d)
    for name in ("step=8.ckpt", "step=12.ckpt"):
        flip_bytes(d / name)
    with pytest.raises(CheckpointError, match=rf"^no checkpoint in {d} verifies; the newest: {d}/step=12.ckpt: sha256"):
        pipeline.resume_checkpoint(tiny_cfg(cache_dir, *SFT, "ckpt_path=last"), str(tmp_path / "sft"))


# -- real processes: kill -9, SIGTERM and Ctrl-C -----------------------------------------------------------------
WRAPPER = """
import os, signal, sys
from pedgpt.training import pipeline
from pedgpt.training.callbacks import Throughput

SIG, AT, WHERE = getattr(signal, sys.argv.pop(1)), int(sys.argv.pop(1)), sys.argv.pop(1)

class SignalAt(Throughput):
    def on_train_batch_end(self, trainer, pl_module, *args):
        super().on_train_batch_end(trainer, pl_module, *args)
        if WHERE == "batch_end" and trainer.global_step == AT:
            os.kill(os.getpid(), SIG)

if WHERE == "checkpoint_write":  # die halfway through writing the step-AT checkpoint
    import lightning as L
    real_save = L.Trainer.save_checkpoint
    def half_save(self, filepath, *a, **k):
        real_save(self, filepath, *a, **k)
        if self.global_step == AT:
            with open(filepath, "r+b") as fh:
                fh.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), SIG)
    L.Trainer.save_checkpoint = half_save
pipeline.Throughput = SignalAt
from pedgpt.train import main
main()
"""


def train_proc(tmp_path, run_dir, cache, sig, at, where, *extra):
    script = tmp_path / "signal_wrapper.py"
    script.write_text(WRAPPER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [
        sys.executable,
        str(script),
        sig,
        str(at),
        where,
        *TINY,
        *SFT,
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("where,at", [("batch_end", 10), ("checkpoint_write", 8)])
def test_kill_9_then_resume_reproduces_every_loss(baseline, cache_dir, tmp_path, where, at):
    run = tmp_path / "run"
    r = train_proc(tmp_path, run, cache_dir, "SIGKILL", at, where)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert (run / "sft" / "checkpoints" / "last").read_text() == (
        "step=8.ckpt" if where == "batch_end" else "step=4.ckpt"
    )
    r = train_proc(tmp_path, run, cache_dir, "SIGKILL", 10_000, "batch_end", "ckpt_path=last")
    assert r.returncode == 0, r.stderr[-2000:]
    assert loss_rows(run / "sft") == loss_rows(baseline / "sft")
    assert ckpt_names(run / "sft") == ["last", "step=12.ckpt", "step=8.ckpt"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])  # SIGINT: Ctrl-C in the terminal
def test_sigterm_or_ctrl_c_saves_a_checkpoint_and_exits_naming_ckpt_path_last(baseline, cache_dir, tmp_path, sig):
    run = tmp_path / "run"
    r = train_proc(tmp_path, run, cache_dir, sig, 6, "batch_end")
    assert r.returncode == 130, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == (
        f"interrupted: a checkpoint was saved; resume with hydra.run.dir={run} ckpt_path=last"
    )
    assert "step=6.ckpt" in ckpt_names(run / "sft")
    verify_checkpoint(str(run / "sft" / "checkpoints" / "step=6.ckpt"))
    r = train_proc(tmp_path, run, cache_dir, "SIGTERM", 10_000, "batch_end", "ckpt_path=last")
    assert r.returncode == 0, r.stderr[-2000:]
    assert loss_rows(run / "sft") == loss_rows(baseline / "sft")
