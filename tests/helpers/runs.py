"""Tiny in-process training runs for the resume and determinism tests."""

import csv
import os

from helpers import compose
from pedgpt.training.validate import validate

TINY = [
    "logger=csv",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=1",
    "progress_bar=false",
    "sft.batch_size=2",
    "sft.val_batch_size=2",
    "sft.max_len=128",
    "model.arch.num_hidden_layers=1",
    "model.arch.hidden_size=32",
    "model.arch.intermediate_size=64",
    "model.vocab_size=500",
    "seed=3",
]
SFT = ["+experiment=sft_demo", "trainer.max_steps=12", "checkpoint_every_n_steps=4", "keep_last_checkpoints=2"]


def tiny_cfg(cache, *overrides):
    """The typed config of a tiny run (``TINY`` + ``overrides``) with its tokenizer cached under ``cache``."""
    return validate(compose(TINY + [f"paths.cache_dir={cache}", *overrides]))


def loss_rows(stage_dir):
    """[(step, train/loss string)] in file order."""
    with open(os.path.join(stage_dir, "metrics.csv"), newline="") as f:
        return [(int(r["step"]), r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
