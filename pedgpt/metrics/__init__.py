"""Chinese generation metrics in the PediatricsGPT paper's convention (jieba tokens; nltk BLEU/GLEU;
``rouge`` F; Distinct-n; per-sample means ×100): pure functions in ``text``, torchmetrics classes in
``generation``, a percentile bootstrap in ``bootstrap``.

The torchmetrics classes are imported on first access, so ``python -m pedgpt.score`` does not pay for
importing torch.
"""

from importlib import import_module
from typing import Any

from pedgpt.metrics.text import KEYS, describe_convention, sample_scores, tokenize

_GENERATION = (
    "ChineseBLEU",
    "ChineseGLEU",
    "ChineseROUGE",
    "ChineseDistinct",
    "ChineseSacreBLEU",
    "ChineseGenerationMetrics",
)

__all__ = ["KEYS", "describe_convention", "sample_scores", "tokenize", *_GENERATION]


def __getattr__(name: str) -> Any:
    if name in _GENERATION:
        return getattr(import_module("pedgpt.metrics.generation"), name)
    raise AttributeError(f"module 'pedgpt.metrics' has no attribute {name!r}")
