"""Score a model export on evaluation suites (``pedgpt.evaluation``) and write the results to a directory:
``predictions.jsonl`` (one row per scored answer / item / pair, with its scores), ``metrics.json`` (per-suite
scores, the metric convention string, the generation settings), ``report.md`` and PNG charts; with
``logger.wandb=true`` the scores and prediction tables go to W&B too (offline without an account).

The library behind ``python -m pedgpt.evaluate``; :func:`evaluate_export` is the same run as a function, for the
training pipeline's ``evaluate=true``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pedgpt.common.constants import DTYPES
from pedgpt.common.errors import ConfigError
from pedgpt.common.logs import WANDB_MODES
from pedgpt.config import CONF_DIR
from pedgpt.config.ranges import Rule, at_least, check_rules, one_of, positive
from pedgpt.config.schema import EvaluateConfig
from pedgpt.evaluation import SUITES, EvalContext, suite_runner
from pedgpt.evaluation.items import NoItems, load_items
from pedgpt.evaluation.outputs import log_wandb, markdown, write_charts, write_predictions
from pedgpt.inference.generation import PRESETS, GenerationSettings
from pedgpt.metrics import describe_convention
from pedgpt.metrics.text import EMPTY_RULES, TOKENIZERS
from pedgpt.models.exports import load_for_inference

#: allowed values of ``conf/evaluate.yaml``'s settings, checked before any model is loaded
EVAL_RULES: tuple[Rule, ...] = (
    one_of("dtype", tuple(DTYPES)),
    at_least("limit", 1, nullable=True),
    one_of("generation.preset", tuple(PRESETS)),
    at_least("generation.max_new_tokens", 1, nullable=True),
    at_least("generation.batch_size", 1),
    at_least("generation.max_prompt_len", 1, nullable=True),
    one_of("metrics.tokenizer", TOKENIZERS),
    one_of("metrics.empty", EMPTY_RULES),
    one_of("cmmlu.primary", ("raw", "norm")),
    at_least("cmmlu.batch_size", 1),
    positive("preference.beta"),
    at_least("preference.batch_size", 1),
    at_least("preference.max_len", 2),
    one_of("logger.mode", WANDB_MODES, nullable=True),
)


def generation_settings(cfg: DictConfig):
    base = PRESETS[cfg.generation.preset].to_dict()
    if cfg.generation.max_new_tokens is not None:
        base["max_new_tokens"] = int(cfg.generation.max_new_tokens)
    base["seed"] = cfg.generation.seed
    return GenerationSettings(**base)


def _max_prompt_len(cfg: DictConfig, model: Any, max_new_tokens: int) -> int | None:
    if cfg.generation.max_prompt_len is not None:
        return int(cfg.generation.max_prompt_len)
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return max(1, positions - max_new_tokens) if positions else None


def run_evaluation(cfg: DictConfig, out_dir: str) -> dict[str, Any]:
    """Run every suite of ``cfg.suites``; write the files to ``out_dir``; return the metrics.json object."""
    unknown = [s for s in cfg.suites if s not in SUITES]
    if unknown:
        raise ConfigError(f"suites: unknown {unknown}; choose from {', '.join(SUITES)}")
    check_rules(cfg, EVAL_RULES)
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    dtype = DTYPES[cfg.dtype]
    loaded = load_for_inference(cfg.model_dir, cfg.adapter_dir, dtype, cfg.device, cfg.trust_remote_code)
    reference = (
        load_for_inference(cfg.preference.reference, None, dtype, cfg.device, cfg.trust_remote_code)
        if cfg.preference.reference and "preference" in cfg.suites
        else None
    )
    settings = generation_settings(cfg)
    ctx = EvalContext(
        loaded=loaded,
        settings=settings,
        batch_size=int(cfg.generation.batch_size),
        max_prompt_len=_max_prompt_len(cfg, loaded.model, settings.max_new_tokens),
        metric_tokenizer=cfg.metrics.tokenizer,
        empty=cfg.metrics.empty,
        cmmlu_primary=cfg.cmmlu.primary,
        cmmlu_batch_size=int(cfg.cmmlu.batch_size),
        reference=reference,
        beta=float(cfg.preference.beta),
        preference_batch_size=int(cfg.preference.batch_size),
        preference_max_len=int(cfg.preference.max_len),
    )
    suites: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    rows_by_suite: dict[str, list[dict]] = {}
    for suite in cfg.suites:
        try:
            items = load_items(suite, cfg.data_root, cfg.cmd_file, cfg.limit)
        except NoItems as e:
            unavailable[suite] = str(e)
            continue
        t = time.time()
        result = suite_runner(suite)(ctx, suite, items)
        result.metrics["seconds"] = round(time.time() - t, 2)
        suites[suite], rows_by_suite[suite] = result.metrics, result.rows
        print(f"[evaluate] {suite}: {len(items)} items, {result.metrics['seconds']:.1f} s", file=sys.stderr)
    summary = {
        "model": loaded.model_dir,
        "adapter": loaded.adapter_dir,
        "convention": describe_convention(cfg.metrics.tokenizer, cfg.metrics.empty),
        "generation": {**settings.to_dict(), "batch_size": ctx.batch_size, "max_prompt_len": ctx.max_prompt_len},
        "data_root": cfg.data_root,
        "suites": suites,
        "unavailable": unavailable,
        "wall_seconds": round(time.time() - t0, 2),
    }
    write_predictions(os.path.join(out_dir, "predictions.jsonl"), [r for rows in rows_by_suite.values() for r in rows])
    charts = write_charts(out_dir, suites)
    summary["charts"] = [os.path.basename(c) for c in charts]
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(markdown(summary, charts, out_dir))
    if cfg.logger.wandb:
        log_wandb(
            summary,
            rows_by_suite,
            out_dir,
            cfg.logger.project,
            cfg.logger.entity,
            cfg.logger.mode,
            charts,
            group=cfg.logger.group,
        )
    return summary


def default_config(**overrides: Any) -> DictConfig:
    """``conf/evaluate.yaml`` (without its Hydra block) with ``overrides`` merged in."""
    cfg = OmegaConf.load(os.path.join(CONF_DIR, "evaluate.yaml"))
    cfg.pop("hydra", None)
    return OmegaConf.merge(OmegaConf.structured(EvaluateConfig), cfg, OmegaConf.create(overrides))


def evaluate_export(
    export_dir: str, suites: list[str], data_root: str | None, out_dir: str, limit: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """Evaluate an export (full or adapter) as ``python -m pedgpt.evaluate`` does; returns the metrics.json
    object. ``overrides`` are further config values, e.g. ``generation={"max_new_tokens": 64}``."""
    cfg = default_config(model_dir=export_dir, suites=list(suites), data_root=data_root, limit=limit, **overrides)
    return run_evaluation(cfg, out_dir)
