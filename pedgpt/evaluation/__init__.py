"""Evaluation suites, one module per family, run by ``python -m pedgpt.evaluate``.

* ``generation_suites`` — answers generated and scored in the paper's metric convention: ``medkqa``,
  ``evidiag`` (multi-turn: the model answers every turn, its own answers kept as history), ``trerecom``,
  ``cmd`` (per-department scores) and ``webmedqa`` (reference-free items skipped and counted);
* ``multiple_choice``  — ``cmmlu_med``: option log-likelihood accuracy, raw and length-normalised;
* ``preference``       — reward accuracy of the policy against a reference on held-out pairs;
* ``items``            — where each suite's items come from (a PedCorpus build or the bundled demo);
* ``context``          — what a suite receives and returns;
* ``outputs``          — predictions.jsonl, metrics.json, report.md, charts and W&B tables.
"""

from __future__ import annotations

from collections.abc import Callable

from pedgpt.evaluation.context import GENERATION_SUITES, SUITES, EvalContext, SuiteResult
from pedgpt.evaluation.generation_suites import run_generation_suite
from pedgpt.evaluation.multiple_choice import run_multiple_choice
from pedgpt.evaluation.preference import run_preference

RUNNERS: dict[str, Callable[[EvalContext, str, list], SuiteResult]] = {
    **{s: run_generation_suite for s in GENERATION_SUITES},
    "cmmlu_med": run_multiple_choice,
    "preference": run_preference,
}


def suite_runner(suite: str) -> Callable[[EvalContext, str, list], SuiteResult]:
    """The function that runs ``suite``: ``runner(ctx, suite, items) -> SuiteResult``."""
    if suite not in RUNNERS:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    return RUNNERS[suite]


__all__ = ["SUITES", "EvalContext", "SuiteResult", "suite_runner"]
