"""Evaluation suites, one module per family, run by ``python -m pedgpt.evaluate``.

* ``generation_suites`` — answers generated and scored in the paper's metric convention: ``medkqa``,
  ``evidiag`` (multi-turn: the model answers every turn, its own answers kept as history), ``trerecom``,
  ``cmd`` (per-department scores) and ``webmedqa`` (reference-free items skipped and counted);
* ``multiple_choice``  — ``cmmlu_med``: option log-likelihood accuracy, raw and length-normalised;
* ``preference``       — reward accuracy of the policy against a reference on held-out pairs;
* ``items``            — where each suite's items come from (a PedCorpus build or the bundled demo);
* ``outputs``          — predictions.jsonl, metrics.json, report.md, charts and W&B tables.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pedgpt.generation import GenerationSettings

GENERATION_SUITES: tuple[str, ...] = ("medkqa", "evidiag", "trerecom", "cmd", "webmedqa")
SUITES: tuple[str, ...] = (*GENERATION_SUITES, "cmmlu_med", "preference")


@dataclass
class EvalContext:
    """What every suite needs: the loaded model and the evaluation settings."""

    loaded: Any                         # pedgpt.models.export.LoadedModel
    settings: GenerationSettings
    batch_size: int = 8
    max_prompt_len: int | None = None
    metric_tokenizer: str = "jieba"
    empty: str = "zero"
    cmmlu_primary: str = "raw"
    cmmlu_batch_size: int = 16
    reference: Any = None               # a LoadedModel scored as the preference reference, or None
    beta: float = 0.1
    preference_batch_size: int = 8
    preference_max_len: int = 512


@dataclass
class SuiteResult:
    """One suite's scores (``metrics``), per-item rows for predictions.jsonl, and counted skips."""

    suite: str
    metrics: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def suite_runner(suite: str) -> Callable[[EvalContext, str, list], SuiteResult]:
    """The function that runs ``suite``: ``runner(ctx, suite, items) -> SuiteResult``."""
    if suite in GENERATION_SUITES:
        from pedgpt.evaluation.generation_suites import run_generation_suite
        return run_generation_suite
    if suite == "cmmlu_med":
        from pedgpt.evaluation.multiple_choice import run_multiple_choice
        return run_multiple_choice
    if suite == "preference":
        from pedgpt.evaluation.preference import run_preference
        return run_preference
    raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
