"""The Chinese generation metrics equal direct calls of jieba, nltk and the `rouge` package (the paper's code,
written out independently below) within 1e-6, on team-written pediatric answer pairs."""
import math
import random
import sys

import jieba
import numpy as np
import pytest
import sacrebleu
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.util import ngrams
from rouge import Rouge

from pedgpt.metrics import bootstrap, text
from pedgpt.metrics.generation import (
    ChineseBLEU,
    ChineseDistinct,
    ChineseGenerationMetrics,
    ChineseGLEU,
    ChineseROUGE,
    ChineseSacreBLEU,
)

KEYS = ("rouge1", "rouge2", "rougeL", "bleu1", "bleu2", "bleu3", "bleu4", "gleu", "distinct1", "distinct2")

#: (prediction, reference) — pediatric-style answers written by the team for these tests.
PAIRS = [
    ("宝宝体温超过38.5℃时可以按体重服用对乙酰氨基酚退热，同时多喝温水，减少衣物帮助散热。",
     "孩子发烧到38.5度以上，可以在医生指导下口服布洛芬或对乙酰氨基酚，并注意补充水分、适当减少包被。"),
    ("婴儿湿疹要保持皮肤湿润，每天洗澡后涂抹无香料的保湿霜，洗澡水不要太热。",
     "湿疹宝宝的护理重点是保湿：洗澡水温不宜过高，洗完后立即厚涂润肤霜，避免穿羊毛衣物。"),
    ("腹泻的孩子需要预防脱水，可以少量多次喂口服补液盐，继续母乳喂养。",
     "小儿腹泻最重要的是防止脱水，建议口服补液盐Ⅲ，少量多次服用，母乳喂养的宝宝不要停奶。"),
    ("手足口病一般一周左右可以自愈，注意隔离，如果出现持续高热、精神差、肢体抖动要马上就医。",
     "手足口病多为自限性疾病，7到10天痊愈；若孩子高烧不退、嗜睡、易惊或呕吐，应立即去医院。"),
    ("6个月以后可以开始添加辅食，先从强化铁的米粉开始，每次只加一种新食物。",
     "宝宝满6月龄后应及时添加辅食，首选富含铁的米粉或肉泥，每引入一种新食物要观察 3 天左右。"),
    ("夜间咳嗽加重可能和过敏或者鼻涕倒流有关，建议抬高枕头，保持室内湿度。",
     "孩子晚上咳得厉害，常见原因有上气道咳嗽综合征和咳嗽变异性哮喘，需要到儿科查明原因。"),
    ("新生儿黄疸如果在出生后24小时内出现，或者胆红素上升很快，需要蓝光治疗。",
     "生理性黄疸多在出生后2-3天出现，一般两周内消退；病理性黄疸出现早、程度重，要及时光疗。"),
    ("Fever in infants under 3 months needs a doctor. 三个月以下的宝宝发热要尽快就诊。",
     "3个月内的婴儿发热不要自行用药，应立即到医院检查。\n家长要记录体温变化。"),
    ("误吞纽扣电池非常危险，不要催吐，立刻去急诊。",
     "孩子吞下纽扣电池属于急症，可能在两小时内灼伤食道，请马上送医，不要自己处理。"),
    ("维生素D每天400国际单位，从出生后数天开始补充。",
     "足月儿出生后1~2周开始每日补充维生素D 400 IU，早产儿可以适当加量。"),
]


def jieba_cut(s):
    return list(jieba.cut(s))


def paper_scores(pred, ref, cut=jieba_cut):
    """The paper's metric code, spelled out with direct library calls (scores in [0, 1])."""
    hyp, gold = cut(pred), cut(ref)
    smooth = SmoothingFunction().method3
    out = {
        "bleu1": sentence_bleu([gold], hyp, weights=(1, 0, 0, 0), smoothing_function=smooth),
        "bleu2": sentence_bleu([gold], hyp, weights=(0.5, 0.5, 0, 0), smoothing_function=smooth),
        "bleu3": sentence_bleu([gold], hyp, weights=(0.33, 0.33, 0.33, 0), smoothing_function=smooth),
        "bleu4": sentence_bleu([gold], hyp, weights=(0.25, 0.25, 0.25, 0.25), smoothing_function=smooth),
        "gleu": sentence_gleu([gold], hyp),
    }
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        r = Rouge().get_scores(" ".join(hyp), " ".join(gold))[0]
    finally:
        sys.setrecursionlimit(old)
    out.update(rouge1=r["rouge-1"]["f"], rouge2=r["rouge-2"]["f"], rougeL=r["rouge-l"]["f"])
    for n in (1, 2):
        grams = list(ngrams(hyp, n))
        out[f"distinct{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    return out


def assert_close(got, want, keys=KEYS, tol=1e-6):
    for k in keys:
        assert float(got[k]) == pytest.approx(want[k], abs=tol), k


def mean_x100(rows, key):
    vals = [r[key] for r in rows if not math.isnan(r[key])]
    return 100.0 * sum(vals) / len(vals)


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
        extra.append({"bleu4": sentence_bleu([gold], hyp, smoothing_function=smooth),
                      "gleu": sentence_gleu([gold], hyp),
                      "distinct1": len(set(hyp)) / len(hyp) if hyp else 0.0})
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
FAMILIES = [(ChineseBLEU, ("bleu1", "bleu2", "bleu3", "bleu4")), (ChineseGLEU, ("gleu",)),
            (ChineseROUGE, ("rouge1", "rouge2", "rougeL")), (ChineseDistinct, ("distinct1", "distinct2")),
            (ChineseGenerationMetrics, KEYS)]


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
