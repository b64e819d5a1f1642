"""torchmetrics ``Metric`` classes for Chinese generation scores (the paper's convention, see ``text.py``).

Each class keeps one float64 list state per key holding per-sample scores in [0, 1]
(``dist_reduce_fx="cat"``, so they sync across processes) and ``compute()`` returns
``{key: mean over samples × 100}`` as 0-dim float64 tensors. A NaN score (ROUGE left out under
``empty="skip_rouge"``) is excluded from that key's mean.

* :class:`ChineseBLEU`     bleu1 bleu2 bleu3 bleu4
* :class:`ChineseGLEU`     gleu
* :class:`ChineseROUGE`    rouge1 rouge2 rougeL
* :class:`ChineseDistinct` distinct1 distinct2
* :class:`ChineseGenerationMetrics`  all ten keys of ``text.KEYS`` from one tokenisation per sample, plus
  ``sacrebleu`` (corpus BLEU, ``tokenize="zh"``) when built with ``sacrebleu=True``.
* :class:`ChineseSacreBLEU`  sacrebleu alone (summed sufficient statistics, ``dist_reduce_fx="sum"``).

Log them as ``val/gen/<key>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from pedgpt.metrics import text

SACREBLEU_KEY = "sacrebleu"


def _as_list(x: str | Sequence[str], name: str) -> list[str]:
    items = [x] if isinstance(x, str) else list(x)
    if not all(isinstance(s, str) for s in items):
        raise TypeError(f"{name} must be a string or a sequence of strings")
    return items


def _pairs(preds: str | Sequence[str], target: str | Sequence[str]) -> list[tuple[str, str]]:
    p, t = _as_list(preds, "preds"), _as_list(target, "target")
    if len(p) != len(t):
        raise ValueError(f"got {len(p)} predictions but {len(t)} references")
    return list(zip(p, t))


def mean_x100(scores: Tensor) -> Tensor:
    """NaN-skipping mean of per-sample scores ×100: (N, K) → (K,); a column of only NaN gives NaN."""
    return torch.nanmean(scores, dim=0) * 100.0


class _PerSampleScores(Metric):
    """Accumulates ``text.sample_scores`` for ``self.keys``; subclasses only name their keys."""

    keys: tuple[str, ...] = ()
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, tokenizer: str = "jieba", empty: str = "zero", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if tokenizer not in text.TOKENIZERS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(text.TOKENIZERS)}")
        self.tokenizer = tokenizer
        self.empty = text.check_empty_rule(empty)
        for key in self.keys:
            self.add_state(f"scores_{key}", default=[], dist_reduce_fx="cat")
        self.set_dtype(torch.float64)

    def update(self, preds: str | Sequence[str], target: str | Sequence[str]) -> None:
        """Score a batch of predictions against their references (one reference per prediction)."""
        pairs = _pairs(preds, target)
        rows = [text.sample_scores(p, r, self.tokenizer, self.empty, self.keys) for p, r in pairs]
        if not rows:
            return
        for key in self.keys:
            column = torch.tensor([row[key] for row in rows], dtype=torch.float64, device=self.device)
            getattr(self, f"scores_{key}").append(column)

    def per_sample(self) -> Tensor:
        """Per-sample scores seen by this process, shape (N, len(keys)); inside ``with metric.sync_context():``
        those of all processes, concatenated in rank order."""
        cols = [
            dim_zero_cat(getattr(self, f"scores_{k}"))
            if len(getattr(self, f"scores_{k}"))
            else torch.zeros(0, dtype=torch.float64, device=self.device)
            for k in self.keys
        ]
        return torch.stack(cols, dim=1)

    def compute(self) -> dict[str, Tensor]:
        means = mean_x100(self.per_sample())
        return {k: means[j] for j, k in enumerate(self.keys)}


class ChineseBLEU(_PerSampleScores):
    """nltk sentence BLEU-1..4, smoothing method 3, cumulative weights; mean ×100."""

    keys = text.BLEU_KEYS


class ChineseGLEU(_PerSampleScores):
    """nltk sentence GLEU; mean ×100."""

    keys = ("gleu",)


class ChineseROUGE(_PerSampleScores):
    """F scores of the ``rouge`` package (ROUGE-1, -2, -L) on space-joined tokens; mean ×100."""

    keys = text.ROUGE_KEYS


class ChineseDistinct(_PerSampleScores):
    """Distinct-1/2 of each prediction's tokens; mean ×100."""

    keys = text.DISTINCT_KEYS


def _add_sacrebleu_stats(metric: Metric, preds: str | Sequence[str], target: str | Sequence[str]) -> None:
    pairs = _pairs(preds, target)
    if pairs:
        stats = text.sacrebleu_stats([p for p, _ in pairs], [r for _, r in pairs])
        total: Any = metric.sacrebleu_stats
        total += torch.tensor(stats, dtype=torch.float64, device=metric.device).sum(dim=0)


def _sacrebleu_value(metric: Metric) -> Tensor:
    stats: Any = metric.sacrebleu_stats
    return torch.tensor(text.sacrebleu_from_stats(stats.tolist()), dtype=torch.float64)


class ChineseSacreBLEU(Metric):
    """Corpus sacreBLEU on raw texts with ``tokenize="zh"`` (0–100), from summed sufficient statistics
    (state ``sacrebleu_stats``, shape (10,), ``dist_reduce_fx="sum"``)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("sacrebleu_stats", default=torch.zeros(10, dtype=torch.float64), dist_reduce_fx="sum")
        self.set_dtype(torch.float64)

    def update(self, preds: str | Sequence[str], target: str | Sequence[str]) -> None:
        _add_sacrebleu_stats(self, preds, target)

    def compute(self) -> dict[str, Tensor]:
        return {SACREBLEU_KEY: _sacrebleu_value(self)}


class ChineseGenerationMetrics(_PerSampleScores):
    """All ten paper keys (``text.KEYS``) from one tokenisation per sample; ``sacrebleu=True`` adds the
    corpus ``sacrebleu`` key. ``compute()`` → ``{rouge1 … distinct2[, sacrebleu]: 0-dim tensor}``."""

    keys = text.KEYS

    def __init__(self, tokenizer: str = "jieba", empty: str = "zero", sacrebleu: bool = False, **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, empty=empty, **kwargs)
        self.with_sacrebleu = sacrebleu
        if sacrebleu:
            self.add_state("sacrebleu_stats", default=torch.zeros(10, dtype=torch.float64), dist_reduce_fx="sum")
            self.set_dtype(torch.float64)

    def update(self, preds: str | Sequence[str], target: str | Sequence[str]) -> None:
        super().update(preds, target)
        if self.with_sacrebleu:
            _add_sacrebleu_stats(self, preds, target)

    def compute(self) -> dict[str, Tensor]:
        out = super().compute()
        if self.with_sacrebleu:
            out[SACREBLEU_KEY] = _sacrebleu_value(self)
        return out

    @property
    def convention(self) -> str:
        """One line naming the convention, tokenizer and library versions behind ``compute()``."""
        return text.describe_convention(self.tokenizer, self.empty, self.with_sacrebleu)
