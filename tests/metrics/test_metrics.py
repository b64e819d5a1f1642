"""The Chinese generation metrics equal direct calls of jieba, nltk and the `rouge` package (the paper's code,
written out independently below) within 1e-6, on team-written pediatric answer pairs."""

import random
import sys

import jieba
import numpy as np
import pytest
import sacrebleu
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from rouge import Rouge

from helpers.metric_pairs import KEYS, PAIRS, jieba_cut, mean_x100, paper_scores  # noqa: F401
from pedgpt.metrics import bootstrap, text
from pedgpt.metrics.generation import (
    ChineseBLEU,
    ChineseDistinct,
    ChineseGenerationMetrics,
    ChineseGLEU,
    ChineseROUGE,
    ChineseSacreBLEU,
)


def assert_close(got, want, keys=KEYS, tol=1e-6):
    for k in keys:
        assert float(got[k]) == pytest.approx(want[k], abs=tol), k


# --- tokenizer ------------------------------------------------------------------------------------------
def test_jieba_tokens_are_the_default_cut_with_whitespace_kept():
    s = "宝宝 发烧  怎么办？\n多喝水。"
    tokens = text.tokenize(s)
    assert tokens == list(jieba.cut(s))
    assert " " in tokens and "\n" in tokens
    assert "".join(tokens) == s


def test_char_tokens_and_unknown_tokenizer():
    assert text.tokenize("发烧 了", "char") == ["发", "烧", " ", "了"]
    with pytest.raises(ValueError, match="unknown tokenizer"):
        text.tokenize("发烧", "spaces")


# --- per-sample scores against the libraries ---------------------------------------------------------------
@pytest.mark.parametrize("pred,ref", PAIRS)
def test_sample_scores_equal_the_papers_code(pred, ref):
    assert_close(text.sample_scores(pred, ref), paper_scores(pred, ref))


@pytest.mark.parametrize("pred,ref", PAIRS[:4])
def test_char_tokenizer_equals_the_libraries_on_characters(pred, ref):
    assert_close(text.sample_scores(pred, ref, tokenizer="char"), paper_scores(pred, ref, cut=list))


def test_bleu3_uses_the_literal_033_weights():
    hyp, ref = jieba_cut(PAIRS[0][0]), jieba_cut(PAIRS[0][1])
    smooth = SmoothingFunction().method3
    third = sentence_bleu([ref], hyp, weights=(1 / 3, 1 / 3, 1 / 3, 0), smoothing_function=smooth)
    assert abs(text.bleu_scores(hyp, ref)["bleu3"] - third) > 1e-6


def test_distinct_by_hand():
    assert text.distinct_n(["发烧", "发烧", "咳嗽"], 1) == pytest.approx(2 / 3)
    assert text.distinct_n(["好", "好", "好"], 2) == pytest.approx(1 / 2)
    assert text.distinct_n(["好"], 2) == 0.0
    assert text.distinct_n([], 1) == 0.0


def test_rouge_on_a_1000_token_pair_needs_and_restores_a_raised_recursion_limit():
    rng = random.Random(7)
    words = [w for w in "发热 咳嗽 腹泻 呕吐 皮疹 鼻塞 流涕 喘息 抽搐 嗜睡 哭闹 食欲 睡眠 体温 用药 补液".split()]
    hyp = [rng.choice(words) for _ in range(1000)]
    ref = [rng.choice(words) for _ in range(1000)]
    with pytest.raises(RecursionError):  # the package itself fails at the default limit
        Rouge().get_scores(" ".join(hyp), " ".join(ref))
    limit = sys.getrecursionlimit()
    got = text.rouge_scores(hyp, ref)
    assert sys.getrecursionlimit() == limit
    sys.setrecursionlimit(100_000)
    try:
        want = Rouge().get_scores(" ".join(hyp), " ".join(ref))[0]
    finally:
        sys.setrecursionlimit(limit)
    assert got["rougeL"] == pytest.approx(want["rouge-l"]["f"], abs=1e-6)
    assert got["rouge1"] == pytest.approx(want["rouge-1"]["f"], abs=1e-6)
    assert 0.5 < got["rougeL"] < 1.0


# --- empty predictions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pred", ["", "   ", "\n\t "])
def test_empty_prediction_scores_zero_everywhere(pred):
    assert text.sample_scores(pred, PAIRS[0][1]) == {k: 0.0 for k in KEYS}


def test_empty_prediction_counts_in_the_mean_under_zero_rule():
    metric = ChineseGenerationMetrics()
    metric.update([p for p, _ in PAIRS] + [""], [r for _, r in PAIRS] + [PAIRS[0][1]])
    rows = [paper_scores(p, r) for p, r in PAIRS] + [{k: 0.0 for k in KEYS}]
    assert_close(metric.compute(), {k: mean_x100(rows, k) for k in KEYS})


def test_skip_rouge_leaves_empty_predictions_out_of_the_rouge_means_only():
    preds, refs = [p for p, _ in PAIRS] + ["", "."], [r for _, r in PAIRS] + [PAIRS[1][1], PAIRS[2][1]]
    metric = ChineseGenerationMetrics(empty="skip_rouge")
    metric.update(preds, refs)
    got = metric.compute()
    scored = [paper_scores(p, r) for p, r in PAIRS]
    for k in ("rouge1", "rouge2", "rougeL"):  # the rouge package rejects "" and "." → left out
        assert float(got[k]) == pytest.approx(mean_x100(scored, k), abs=1e-6)
    smooth = SmoothingFunction().method3
    extra = []
    for p, r in zip(preds[-2:], refs[-2:]):
        hyp, gold = jieba_cut(p), jieba_cut(r)
        extra.append(
            {
                "bleu4": sentence_bleu([gold], hyp, smoothing_function=smooth),
                "gleu": sentence_gleu([gold], hyp),
                "distinct1": len(set(hyp)) / len(hyp) if hyp else 0.0,
            }
        )
    for k in ("bleu4", "gleu", "distinct1"):
        want = 100.0 * (sum(r[k] for r in scored) + sum(e[k] for e in extra)) / (len(scored) + 2)
        assert float(got[k]) == pytest.approx(want, abs=1e-6)


def test_rouge_rejection_scores_zero_under_zero_rule():
    s = text.sample_scores(".", PAIRS[0][1])
    assert (s["rouge1"], s["rouge2"], s["rougeL"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        Rouge().get_scores(".", " ".join(jieba_cut(PAIRS[0][1])))


def test_unknown_empty_rule():
    with pytest.raises(ValueError, match="empty-prediction rule"):
        ChineseBLEU(empty="drop")


# --- torchmetrics classes --------------------------------------------------------------------------------
FAMILIES = [
    (ChineseBLEU, ("bleu1", "bleu2", "bleu3", "bleu4")),
    (ChineseGLEU, ("gleu",)),
    (ChineseROUGE, ("rouge1", "rouge2", "rougeL")),
    (ChineseDistinct, ("distinct1", "distinct2")),
    (ChineseGenerationMetrics, KEYS),
]


@pytest.mark.parametrize("cls,keys", FAMILIES)
def test_metric_classes_equal_the_mean_of_the_papers_code(cls, keys):
    rows = [paper_scores(p, r) for p, r in PAIRS]
    metric = cls()
    metric.update([p for p, _ in PAIRS[:3]], [r for _, r in PAIRS[:3]])
    metric.update([p for p, _ in PAIRS[3:]], [r for _, r in PAIRS[3:]])
    got = metric.compute()
    assert set(got) == set(keys)
    assert_close(got, {k: mean_x100(rows, k) for k in keys}, keys)
    assert metric.per_sample().shape == (len(PAIRS), len(keys))


def test_forward_returns_the_batch_and_keeps_accumulating():
    metric = ChineseGLEU()
    first = metric([p for p, _ in PAIRS[:2]], [r for _, r in PAIRS[:2]])
    metric([p for p, _ in PAIRS[2:]], [r for _, r in PAIRS[2:]])
    rows = [paper_scores(p, r) for p, r in PAIRS]
    assert float(first["gleu"]) == pytest.approx(mean_x100(rows[:2], "gleu"), abs=1e-6)
    assert float(metric.compute()["gleu"]) == pytest.approx(mean_x100(rows, "gleu"), abs=1e-6)
    metric.reset()
    metric.update(PAIRS[0][0], PAIRS[0][1])
    assert float(metric.compute()["gleu"]) == pytest.approx(100 * rows[0]["gleu"], abs=1e-6)


def test_mismatched_batch_lengths():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        ChineseBLEU().update(["a", "b"], ["a"])


def test_sacrebleu_equals_corpus_bleu_with_zh_tokenizer():
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    want = sacrebleu.corpus_bleu(preds, [refs], tokenize="zh").score
    metric = ChineseSacreBLEU()
    metric.update(preds[:4], refs[:4])
    metric.update(preds[4:], refs[4:])
    assert float(metric.compute()["sacrebleu"]) == pytest.approx(want, abs=1e-6)
    full = ChineseGenerationMetrics(sacrebleu=True)
    full.update(preds, refs)
    got = full.compute()
    assert float(got["sacrebleu"]) == pytest.approx(want, abs=1e-6)
    assert "tokenize=zh" in full.convention and "jieba" in full.convention
    assert text.corpus_sacrebleu(preds, refs) == pytest.approx(want, abs=1e-9)


def test_compute_values_are_float64_scalars():
    metric = ChineseGenerationMetrics(tokenizer="char")
    metric.update(PAIRS[0][0], PAIRS[0][1])
    got = metric.compute()
    assert list(got) == list(KEYS)
    assert all(v.dtype == torch.float64 and v.ndim == 0 for v in got.values())


# --- bootstrap -------------------------------------------------------------------------------------------
def test_bootstrap_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(3)
    values = rng.random((50, 3))
    values[0, 2] = np.nan
    a = bootstrap.bootstrap(values, 300, seed=5)
    b = bootstrap.bootstrap(values, 300, seed=5)
    c = bootstrap.bootstrap(values, 300, seed=6)
    assert a.shape == (300, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    ci = bootstrap.percentile_ci(a)
    means = np.nanmean(values, axis=0)
    assert np.all(ci[:, 0] < means) and np.all(means < ci[:, 1])
    # a resample's mean is the mean of the drawn rows: check one replicate by hand
    idx = next(bootstrap.resample_indices(50, 300, seed=5, chunk=100))[0]
    assert a[0, 0] == pytest.approx(values[idx, 0].mean())


def test_bootstrap_sum_and_constant_column():
    values = np.array([[1.0, 2.0], [1.0, 4.0]])
    sums = bootstrap.bootstrap(values, 20, reduce="sum", seed=0)
    assert np.all(sums[:, 0] == 2.0)
    assert set(np.unique(sums[:, 1])) <= {4.0, 6.0, 8.0}
    assert bootstrap.percentile_ci(sums)[0].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError):
        bootstrap.bootstrap(values, 0)
