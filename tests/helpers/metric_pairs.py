"""Team-written pediatric answer pairs and the paper's metric code written out with direct library calls — the
independent oracle of the metrics tests."""

import math
import sys

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.util import ngrams
from rouge import Rouge

KEYS = ("rouge1", "rouge2", "rougeL", "bleu1", "bleu2", "bleu3", "bleu4", "gleu", "distinct1", "distinct2")

#: (prediction, reference) — pediatric-style answers written by the team for these tests.
PAIRS = [
    (
        "宝宝体温超过38.5℃时可以按体重服用对乙酰氨基酚退热，同时多喝温水，减少衣物帮助散热。",
        "孩子发烧到38.5度以上，可以在医生指导下口服布洛芬或对乙酰氨基酚，并注意补充水分、适当减少包被。",
    ),
    (
        "婴儿湿疹要保持皮肤湿润，每天洗澡后涂抹无香料的保湿霜，洗澡水不要太热。",
        "湿疹宝宝的护理重点是保湿：洗澡水温不宜过高，洗完后立即厚涂润肤霜，避免穿羊毛衣物。",
    ),
    (
        "腹泻的孩子需要预防脱水，可以少量多次喂口服补液盐，继续母乳喂养。",
        "小儿腹泻最重要的是防止脱水，建议口服补液盐Ⅲ，少量多次服用，母乳喂养的宝宝不要停奶。",
    ),
    (
        "手足口病一般一周左右可以自愈，注意隔离，如果出现持续高热、精神差、肢体抖动要马上就医。",
        "手足口病多为自限性疾病，7到10天痊愈；若孩子高烧不退、嗜睡、易惊或呕吐，应立即去医院。",
    ),
    (
        "6个月以后可以开始添加辅食，先从强化铁的米粉开始，每次只加一种新食物。",
        "宝宝满6月龄后应及时添加辅食，首选富含铁的米粉或肉泥，每引入一种新食物要观察 3 天左右。",
    ),
    (
        "夜间咳嗽加重可能和过敏或者鼻涕倒流有关，建议抬高枕头，保持室内湿度。",
        "孩子晚上咳得厉害，常见原因有上气道咳嗽综合征和咳嗽变异性哮喘，需要到儿科查明原因。",
    ),
    (
        "新生儿黄疸如果在出生后24小时内出现，或者胆红素上升很快，需要蓝光治疗。",
        "生理性黄疸多在出生后2-3天出现，一般两周内消退；病理性黄疸出现早、程度重，要及时光疗。",
    ),
    (
        "Fever in infants under 3 months needs a doctor. 三个月以下的宝宝发热要尽快就诊。",
        "3个月内的婴儿发热不要自行用药，应立即到医院检查。\n家长要记录体温变化。",
    ),
    (
        "误吞纽扣电池非常危险，不要催吐，立刻去急诊。",
        "孩子吞下纽扣电池属于急症，可能在两小时内灼伤食道，请马上送医，不要自己处理。",
    ),
    (
        "维生素D每天400国际单位，从出生后数天开始补充。",
        "足月儿出生后1~2周开始每日补充维生素D 400 IU，早产儿可以适当加量。",
    ),
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


def mean_x100(rows, key):
    vals = [r[key] for r in rows if not math.isnan(r[key])]
    return 100.0 * sum(vals) / len(vals)
