"""Tokenize a pipeline's data into the token stores of its stages, ahead of training (``python -m
pedgpt.data.tokenize``): the same stores, keys and messages as the first training run would make."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from pedgpt.common.errors import PedgptError
from pedgpt.common.logs import quiet_libraries
from pedgpt.models.tokenizer import load_tokenizer, use_template
from pedgpt.stages.examples import stage_examples
from pedgpt.stages.registry import get_stage
from pedgpt.training.init_export import prepare_initial_export
from pedgpt.training.validate import validate


def tokenize(cfg: DictConfig, run_dir: str) -> int:
    """Build (or find) the token store of every stage of ``cfg.pipeline``; returns the exit status."""
    quiet_libraries()
    try:
        cfg = validate(cfg)
        init_dir = prepare_initial_export(cfg, run_dir)
        tokenizer = use_template(load_tokenizer(init_dir), cfg.model.template)
        for name in cfg.pipeline:
            stage_examples(get_stage(name)(cfg), tokenizer)
    except (PedgptError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
