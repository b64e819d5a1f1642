"""Per-sample Chinese generation scores in the PediatricsGPT paper's convention (pure functions).

The paper scores each (prediction, reference) pair on its jieba tokens, then averages over samples (×100 is
applied by the aggregators, not here). Every score below comes from the reference library itself:

* tokens    ``list(jieba.cut(text))`` — accurate mode, HMM on, no user dictionary; whitespace tokens kept.
            ``tokenizer="char"`` uses ``list(text)`` instead.
* BLEU-n    nltk ``sentence_bleu([ref], hyp, weights=w, smoothing_function=SmoothingFunction().method3)``
            with the cumulative weights of :data:`BLEU_WEIGHTS` (``.33`` literally, as in the paper's code).
* GLEU      nltk ``sentence_gleu([ref], hyp)``.
* ROUGE     F scores of the PyPI ``rouge`` package on ``" ".join(tokens)``. That package splits on spaces
            (so jieba's whitespace tokens vanish there) and on ``"."``; it raises on a side that is empty
            after that split — :func:`rouge_scores` returns ``None`` then.
* Distinct  unique n-grams ÷ n-grams of the prediction's tokens; 0 with fewer than ``n`` tokens.

Empty predictions (empty or whitespace-only): with ``empty="zero"`` (default) they score 0 on every key;
with ``empty="skip_rouge"`` (the paper's code) every key is computed as the libraries compute it and a
pair on which ``rouge`` raises is left out of the ROUGE means (its ROUGE entries are NaN).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import sacrebleu
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from rouge import Rouge
from sacrebleu.metrics import BLEU

#: Output keys, in reporting order.
KEYS: tuple[str, ...] = (
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu1",
    "bleu2",
    "bleu3",
    "bleu4",
    "gleu",
    "distinct1",
    "distinct2",
)
BLEU_KEYS: tuple[str, ...] = ("bleu1", "bleu2", "bleu3", "bleu4")
ROUGE_KEYS: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")
DISTINCT_KEYS: tuple[str, ...] = ("distinct1", "distinct2")
#: Cumulative BLEU weights exactly as the paper's code writes them.
BLEU_WEIGHTS: dict[str, tuple[float, ...]] = {
    "bleu1": (1, 0, 0, 0),
    "bleu2": (0.5, 0.5, 0, 0),
    "bleu3": (0.33, 0.33, 0.33, 0),
    "bleu4": (0.25, 0.25, 0.25, 0.25),
}
TOKENIZERS: tuple[str, ...] = ("jieba", "char")
EMPTY_RULES: tuple[str, ...] = ("zero", "skip_rouge")

_ROUGE_NAMES = {"rouge1": "rouge-1", "rouge2": "rouge-2", "rougeL": "rouge-l"}
_jieba = None


def _jieba_module() -> Any:
    """Import jieba once, silence its logger and build its dictionary (≈1 s), on first use only."""
    global _jieba
    if _jieba is None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def tokenize(text: str, tokenizer: str = "jieba") -> list[str]:
    """Tokens of ``text``: jieba's default cut (every token kept) or its characters."""
    if tokenizer == "jieba":
        return list(_jieba_module().cut(text))
    if tokenizer == "char":
        return list(text)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")


def check_empty_rule(empty: str) -> str:
    if empty not in EMPTY_RULES:
        raise ValueError(f"unknown empty-prediction rule {empty!r}; choose one of {', '.join(EMPTY_RULES)}")
    return empty


def is_empty(prediction: str) -> bool:
    """True for an empty or whitespace-only prediction."""
    return not prediction.strip()


def bleu_scores(hyp: Sequence[str], ref: Sequence[str]) -> dict[str, float]:
    """nltk sentence BLEU-1..4 (smoothing method 3, cumulative weights) of token lists, in [0, 1]."""
    # One call with the list of weight tuples: nltk counts the n-gram precisions once and applies each
    # tuple to them, exactly as four separate calls would.
    scores = sentence_bleu(
        [list(ref)], list(hyp), weights=list(BLEU_WEIGHTS.values()), smoothing_function=SmoothingFunction().method3
    )
    return {k: float(v) for k, v in zip(BLEU_WEIGHTS, scores)}


def gleu_score(hyp: Sequence[str], ref: Sequence[str]) -> float:
    """nltk sentence GLEU of token lists, in [0, 1]."""
    return float(sentence_gleu([list(ref)], list(hyp)))


def rouge_scores(hyp: Sequence[str], ref: Sequence[str]) -> dict[str, float] | None:
    """F scores of the ``rouge`` package on the space-joined tokens, or ``None`` where it raises.

    Its ROUGE-L reconstructs the LCS recursively (depth ≈ len(hyp) + len(ref)); the recursion limit is
    raised for the call and restored afterwards.
    """
    hyp_text, ref_text = " ".join(hyp), " ".join(ref)
    needed = 2 * (len(hyp_text) + len(ref_text)) + 1000
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, needed))
    try:
        scores = Rouge().get_scores(hyp_text, ref_text)[0]
    except ValueError:  # "Hypothesis is empty." / "Reference is empty." after its "."-split
        return None
    finally:
        sys.setrecursionlimit(old_limit)
    return {k: float(scores[name]["f"]) for k, name in _ROUGE_NAMES.items()}


def distinct_n(tokens: Sequence[str], n: int) -> float:
    """Unique n-grams ÷ n-grams of one token list; 0.0 with fewer than ``n`` tokens."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sample_scores(
    prediction: str, reference: str, tokenizer: str = "jieba", empty: str = "zero", keys: Sequence[str] = KEYS
) -> dict[str, float]:
    """Scores in [0, 1] of one pair for ``keys`` (a subset of :data:`KEYS`); NaN marks a ROUGE score left
    out of the mean (``empty="skip_rouge"`` and the ``rouge`` package raised)."""
    check_empty_rule(empty)
    if empty == "zero" and is_empty(prediction):
        return {k: 0.0 for k in keys}
    hyp, ref = tokenize(prediction, tokenizer), tokenize(reference, tokenizer)
    out: dict[str, float] = {}
    if any(k in keys for k in ROUGE_KEYS):
        rouge = rouge_scores(hyp, ref)
        fill = 0.0 if empty == "zero" else math.nan
        out.update(rouge if rouge is not None else {k: fill for k in ROUGE_KEYS})
    if any(k in keys for k in BLEU_KEYS):
        out.update(bleu_scores(hyp, ref))
    if "gleu" in keys:
        out["gleu"] = gleu_score(hyp, ref)
    out["distinct1"], out["distinct2"] = distinct_n(hyp, 1), distinct_n(hyp, 2)
    return {k: out[k] for k in keys}


def describe_convention(tokenizer: str = "jieba", empty: str = "zero", sacrebleu: bool = False) -> str:
    """One line saying which convention, tokenizer and library versions produced a set of scores."""
    from importlib.metadata import version

    tok = (
        f"jieba {version('jieba')} tokens (default cut: accurate mode, HMM on, whitespace tokens kept)"
        if tokenizer == "jieba"
        else "character tokens"
    )
    rule = (
        "empty predictions score 0"
        if empty == "zero"
        else "pairs the rouge package rejects are left out of the ROUGE means"
    )
    line = (
        f"paper: per-sample scores ×100 averaged over samples on {tok}; "
        f"nltk {version('nltk')} sentence_bleu (smoothing method3, cumulative weights, .33 literal) and "
        f"sentence_gleu; rouge {version('rouge')} F on space-joined tokens; distinct-n per sample; {rule}"
    )
    if sacrebleu:
        line += f"; sacrebleu: corpus BLEU, sacrebleu {version('sacrebleu')} tokenize=zh on raw text"
    return line


def sacrebleu_stats(predictions: Sequence[str], references: Sequence[str]) -> list[list[int]]:
    """Per-sample sufficient statistics of sacreBLEU (``tokenize="zh"``), shape (N, 10):
    ``[hyp_len, ref_len, correct_1..4, total_1..4]`` — summed over any subset they give its corpus BLEU."""
    return [
        list(map(int, s)) for s in BLEU(tokenize="zh")._extract_corpus_statistics(list(predictions), [list(references)])
    ]


def sacrebleu_from_stats(stats: Sequence[float]) -> float:
    """Corpus sacreBLEU (0–100, sacreBLEU's default exp smoothing) from summed statistics of length 10."""
    s = [int(round(float(v))) for v in stats]
    return float(
        BLEU.compute_bleu(correct=s[2:6], total=s[6:10], sys_len=s[0], ref_len=s[1], smooth_method="exp").score
    )


def corpus_sacrebleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus sacreBLEU (0–100) of raw texts with sacreBLEU's Chinese tokenizer (``tokenize="zh"``)."""
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize="zh").score)
