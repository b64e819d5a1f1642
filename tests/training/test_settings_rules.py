"""Every setting is checked before the first step, for every stage of the pipeline at once: one bad value per key
fails at startup (``validate``, before any model is built or any stage runs) with a ConfigError naming the key.

The table lists each key with one value outside its range; the stage keys are tried in every stage of the
default four-stage pipeline (a bad value in the last stage must stop the run before the first one starts).
"""

import subprocess
import sys

import pytest

from helpers import ROOT, compose
from pedgpt.common.errors import ConfigError
from pedgpt.training.validate import validate

#: run-wide key → a bad value (as an override); the error must start with the key
RUN_KEYS = {
    "seed": "-1",
    "checkpoint_every_n_steps": "-1",
    "keep_last_checkpoints": "0",
    "max_nonfinite_in_a_row": "-1",
    "eval_limit": "0",
    "eval_max_new_tokens": "0",
    "gen.every_n_val": "0",
    "gen.samples_per_task": "0",
    "gen.max_new_tokens": "0",
    "gen.batch_size": "0",
    "gen.metric_tokenizer": "whitespace",
    "plan.gpu_memory_gb": "0",
    "plan.usable_fraction": "1.5",
    "model.dtype": "float8",
    "model.attention": "flash_attention_9",
    "model.vocab_size": "0",
    "adapter.name": "lora",
    "trainer.precision": "banana",
    "trainer.max_steps": "0",
    "trainer.log_every_n_steps": "0",
    "trainer.val_check_interval": "0",
    "trainer.limit_val_batches": "1.5",
    "trainer.gradient_clip_val": "0",
    "trainer.accumulate_grad_batches": "0",
    "trainer.num_nodes": "0",
    "trainer.devices": "0",
    "trainer.fsdp.param_dtype": "int8",
    "trainer.fsdp.reduce_dtype": "float64",
    "logger.csv_flush_every_n_steps": "0",
    "logger.mode": "sometimes",
    "adapter.rank": "0",
    "adapter.alpha": "0",
    "adapter.num_universal": "-1",
    "adapter.num_specific": "0",
    "adapter.dropout": "1.5",
    "adapter.router_kwargs.top_k": "0",
    "adapter.router_kwargs.balance_weight": "-0.1",
}
#: keys every stage has → a bad value
STAGE_KEYS = {
    "max_steps": "0",
    "batch_size": "0",
    "val_batch_size": "0",
    "max_len": "1",
    "log_every_n_steps": "0",
    "val_check_interval": "0",
    "warmup_steps": "-1",
    "min_lr_ratio": "1.5",
    "loss_chunk_size": "-1",
    "optimizer.lr": "-1e-4",
    "optimizer.weight_decay": "-0.1",
    "optimizer.betas": "[0.9,1.0]",
    "optimizer.eps": "0",
}
STAGES = ("cpt", "sft", "dfpo", "mole")
#: a stage's own keys → a bad value
OWN_KEYS = {
    "cpt.instruction_ratio": "1.0",
    "dfpo.beta": "0",
    "dfpo.mu": "-1",
    "dfpo.label_smoothing": "0.5",
    "mole.general_ratio": "1.0",
}
#: more than one bad value of a key matters (the issue's own cases among them)
MORE = [
    ("trainer.max_steps", "-1", r"^trainer\.max_steps: must be a whole number >= 1 \(or null\), got -1; null takes"),
    ("trainer.limit_val_batches", "0", r"^trainer\.limit_val_batches: must be a whole number of batches >= 1 or a"),
    ("trainer.gradient_clip_val", "-1.0", r"^trainer\.gradient_clip_val: must be a number > 0 \(or null\), got -1\.0"),
    ("trainer.devices", "-3", r"^trainer\.devices: must be a count >= 1, -1 \(all\), a list of ids or auto, got -3$"),
    ("adapter.dropout", "-0.1", r"^adapter\.dropout: must be a number in \[0, 1\), got -0\.1$"),
    ("sft.warmup_steps", "-5", r"^sft\.warmup_steps: must be a whole number >= 0, got -5$"),
    ("mole.optimizer.lr", "0", r"^mole\.optimizer\.lr: must be a number > 0, got 0\.0$"),
    (
        "dfpo.optimizer.betas",
        "[0.9]",
        r"^dfpo\.optimizer\.betas: must be a list of 2 values, each a number in \[0, 1\)",
    ),
    ("sft.optimizer.momentum", "1.0", r"^sft\.optimizer\.momentum: must be a number in \[0, 1\) \(or null\), got 1\.0"),
    ("dfpo.beta", "-0.1", r"^dfpo\.beta: must be a number > 0, got -0\.1; the DPO temperature"),
    ("adapter.router_kwargs.top_k", "4", r"^adapter\.router: router 'noisy_token': top_k must be in \[1, num_spec"),
    ("trainer.precision", "banana", r"^trainer\.precision: must be one of .*'bf16-mixed'.*, got 'banana'$"),
]


#: keys the shipped YAML files leave out (the schema's null applies)
ADDED = ("adapter.router_kwargs.", ".optimizer.eps=", ".optimizer.momentum=")


def _refused(override: str, pattern: str) -> None:
    if any(k in override for k in ADDED):  # not in the YAML (the schema's null): added with `+`
        override = "+" + override
    cfg = compose([override])
    with pytest.raises(ConfigError, match=pattern):
        validate(cfg)


@pytest.mark.parametrize("key", sorted(RUN_KEYS))
def test_a_bad_run_wide_value_names_its_key(key):
    _refused(f"{key}={RUN_KEYS[key]}", rf"^{key.replace('.', '[.]')}: ")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("key", sorted(STAGE_KEYS))
def test_a_bad_stage_value_names_its_key_in_every_stage(stage, key):
    full = f"{stage}.{key}"
    _refused(f"{full}={STAGE_KEYS[key]}", rf"^{full.replace('.', '[.]')}: must be ")


@pytest.mark.parametrize("key", sorted(OWN_KEYS))
def test_a_bad_value_of_a_stage_setting_names_its_key(key):
    _refused(f"{key}={OWN_KEYS[key]}", rf"^{key.replace('.', '[.]')}: must be ")


@pytest.mark.parametrize("key,value,pattern", MORE, ids=[f"{k}={v}" for k, v, _ in MORE])
def test_a_bad_value_is_worded_with_its_range(key, value, pattern):
    _refused(f"{key}={value}", pattern)


def test_a_router_option_the_router_does_not_take_is_refused():
    cfg = compose(["adapter.router=task", "+adapter.router_kwargs.top_k=2"])
    with pytest.raises(ConfigError, match=r"^adapter\.router: router 'task' got unknown kwargs \['top_k'\]"):
        validate(cfg)


def test_the_shipped_settings_pass():
    for overrides in ([], ["+experiment=dfpo_13b", "dry_run=true"], ["+experiment=mole_7b", "dry_run=true"]):
        validate(compose(overrides))


def test_a_bad_value_in_the_last_stage_stops_the_run_before_the_first_stage(tmp_path):
    """The command line: exit 2, one line naming the key; nothing trained, no export written."""
    r = subprocess.run(
        [sys.executable, "-m", "pedgpt.train", "mole.optimizer.lr=-0.001", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == "config error: mole.optimizer.lr: must be a number > 0, got -0.001"
    assert not (tmp_path / "cpt").exists()
