"""Cleaning, duplicate / contamination removal, splits and statistics of the PedCorpus builder."""

import pytest

from pedgpt.data.corpus.clean import Limits, clean_record, clean_text, normalize
from pedgpt.data.corpus.dedup import DedupConfig, decontaminate, dedup
from pedgpt.data.corpus.sources import Unusable
from pedgpt.data.corpus.splits import SplitConfig, assign, group_key, hash_split, resolve
from pedgpt.data.corpus.stats import compute, markdown
from pedgpt.data.schema import EvalItem, Instruction, Message, PreferencePair, PretrainText


def ins(q, a, **kw):
    return Instruction(messages=[Message("user", q), Message("assistant", a)], **kw)


def test_normalize_keeps_chinese_punctuation_folds_fullwidth_ascii():
    assert normalize("ＡＢＣ１２３，你好！（测试）：是吗？") == "ABC123，你好！（测试）：是吗？"
    assert normalize("５ｍｇ／ｋｇ") == "5mg/kg"


def test_clean_text_html_and_whitespace():
    assert clean_text("孩子 发烧<br/>三天&nbsp;了\r\n\r\n\r\n\r\n请问  怎么办 ") == "孩子发烧\n三天了\n\n请问怎么办"
    assert clean_text("<p>第一段</p><p>第二段</p>") == "第一段\n第二段"
    assert clean_text("dose  5 mg") == "dose 5 mg"
    assert clean_text("    def f():\n        return 1") == "def f():\n        return 1"


def test_clean_record_limits():
    lim = Limits(max_message_chars=20, min_answer_chars=3)
    assert clean_record(ins("问 题", "回答内容"), lim).messages[0].content == "问题"
    for rec, reason in [
        (ins("问", "短"), "answer_too_short"),
        (ins("问" * 30, "回答内容"), "too_long"),
        (ins("<br>", "回答内容"), "empty_after_cleaning"),
    ]:
        with pytest.raises(Unusable) as e:
            clean_record(rec, lim)
        assert e.value.reason == reason
    pair = PreferencePair(prompt=[Message("user", "问")], chosen="好的回答", rejected="好的回答 ")
    with pytest.raises(Unusable, match="identical_pair"):
        clean_record(pair, lim)
    with pytest.raises(Unusable, match="too_long"):
        clean_record(PretrainText(text="字" * 50), Limits(max_text_chars=40))


def test_exact_and_near_duplicates():
    base = "孩子发烧三天，体温三十九度，精神还可以，需要去医院吗？建议先物理降温并观察精神状态，如持续高热请就医。"
    recs = [
        ins(base[:24], base[24:], id="a"),
        ins(base[:24] + " ", base[24:], id="b"),
        ins(base[:24], base[24:-1] + "！", id="c"),
        ins("完全不同的问题：宝宝湿疹怎么护理？", "保湿、避免过热。", id="d"),
    ]
    kept, removed = dedup(recs, DedupConfig(threshold=0.8))
    assert [r.id for r in kept] == ["a", "d"]
    assert removed == {"exact_duplicate": 1, "near_duplicate": 1}


def test_contamination_removes_and_reports():
    q = "一岁宝宝长了湿疹，可以用含激素的药膏吗？用多久比较安全？"
    ev = [EvalItem(prompt=[Message("user", q)], suite="webmedqa", id="e1")]  # reference-free
    train = [
        ins(q, "可以短期小面积使用弱效激素。", id="t1", source="x"),
        ins("孩子夜里总咳嗽是什么原因？需要做哪些检查？", "可能是过敏或感染。", id="t2", source="x"),
    ]
    kept, report = decontaminate(train, ev, DedupConfig())
    assert [r.id for r in kept] == ["t2"]
    assert report == [{"train_id": "t1", "train_source": "x", "eval_id": "e1", "suite": "webmedqa", "by": "question"}]


def test_splits_group_honour_and_stability():
    cfg = SplitConfig(ratios={"train": 0.5, "dev": 0.25, "test": 0.25})
    a = ins("问一", "答一", meta={"disease": "小儿肺炎"})
    b = ins("问二", "答二", meta={"disease": "小儿肺炎"})
    assert group_key(a) == "disease:小儿肺炎" and assign(a, cfg) == assign(b, cfg)
    assert resolve("test", "k", cfg) == "test" and resolve("validation", "k", cfg) == "dev"
    with pytest.raises(ValueError, match="unknown upstream split 'holdout'"):
        resolve("holdout", "k", cfg)
    keys = [f"dialogue:{i}" for i in range(2000)]
    got = [hash_split(k, cfg) for k in keys]
    assert 0.45 < got.count("train") / 2000 < 0.55 and 0.2 < got.count("test") / 2000 < 0.3
    # a record's split depends only on its key: splitting a larger set moves nothing
    assert [hash_split(k, cfg) for k in keys[:100]] == got[:100]
    with pytest.raises(ValueError, match="sum to 1"):
        SplitConfig(ratios={"train": 0.9, "dev": 0.2})


def test_stats_counts_kept_records():
    out = {
        "sft/train.jsonl": [
            ins("问", "答答", task="medkqa", source="xywy_kg", split="train"),
            ins("问二", "答答", task="consult", source="cmd", split="train"),
        ],
        "cpt/train.jsonl": [PretrainText(text="一段文字", source="cmeee", split="train")],
        "eval/cmd.jsonl": [
            EvalItem(prompt=[Message("user", "问三")], suite="cmd", reference="答", source="cmd", task="consult")
        ],
    }
    s = compute(out, {"too_long": 2}, [])
    assert s["tasks"] == {"consult": 2, "medkqa": 1}
    assert s["sources"] == {"cmd": 2, "cmeee": 1, "xywy_kg": 1}
    assert s["splits"] == {"test": 1, "train": 3} and s["skipped"] == {"too_long": 2}
    assert s["tokens"]["unit"] == "chars" and s["tokens"]["by_file"]["cpt/train.jsonl"] == 4
    assert "| MedKQ&A (knowledge question answering) | 1 | 0 | 0 |" in markdown(s)
