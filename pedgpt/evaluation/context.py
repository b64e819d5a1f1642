"""What every evaluation suite receives (:class:`EvalContext`) and returns (:class:`SuiteResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pedgpt.inference.generation import GenerationSettings

GENERATION_SUITES: tuple[str, ...] = ("medkqa", "evidiag", "trerecom", "cmd", "webmedqa")
SUITES: tuple[str, ...] = (*GENERATION_SUITES, "cmmlu_med", "preference")


@dataclass
class EvalContext:
    """What every suite needs: the loaded model and the evaluation settings."""

    loaded: Any  # pedgpt.models.exports.LoadedModel
    settings: GenerationSettings
    batch_size: int = 8
    max_prompt_len: int | None = None
    metric_tokenizer: str = "jieba"
    empty: str = "zero"
    cmmlu_primary: str = "raw"
    cmmlu_batch_size: int = 16
    reference: Any = None  # a LoadedModel scored as the preference reference, or None
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
