"""Preference, instruction, pre-training and benchmark converters, and the format registry."""

import json
from collections import Counter

import pytest

from helpers import FIXTURES
from pedgpt.data.corpus.sources import (
    Context,
    SourceError,
    Unusable,
    benchmark,
    detect_format,
    instructions,
    preference,
    pretrain,
    read_json_rows,
)

CORPUS = FIXTURES / "corpus"


def first(rel):
    return json.loads((CORPUS / rel).read_text(encoding="utf-8").splitlines()[0])


@pytest.mark.parametrize(
    "rel,fmt",
    [
        ("qa/consult_pediatric.jsonl", "consult"),
        ("qa/webmedqa_questions.jsonl", "consult"),
        ("kg/kg_pediatric.jsonl", "xywy_kg"),
        ("kg/medical.json", "xywy_kg"),
        ("diagnosis/mz10_cases.jsonl", "symptom_dx"),
        ("preference/pairs.jsonl", "preference"),
        ("instructions/alpaca_general.jsonl", "instructions"),
        ("instructions/sharegpt.jsonl", "instructions"),
        ("instructions/identity.jsonl", "instructions"),
        ("pretrain/text.jsonl", "pretrain"),
        ("benchmarks/cmmlu_medical.jsonl", "benchmark"),
    ],
)
def test_detection_by_first_record_keys(rel, fmt):
    assert detect_format(first(rel), rel).name == fmt


def test_config_mapping_overrides_detection_and_unknown_keys_fail():
    assert detect_format({"text": "x"}, "d/notes.jsonl", {"notes*": "consult"}).name == "consult"
    with pytest.raises(SourceError, match=r"d/odd.jsonl:1: unrecognised record format"):
        detect_format({"foo": 1}, "d/odd.jsonl")


def test_malformed_json_line_names_file_and_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "一"}\n\n{"text": "二"\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"x.jsonl:3: malformed JSON"):
        list(read_json_rows(str(p)))
    skipped = Counter()
    assert [n for n, _ in read_json_rows(str(p), skip_invalid=True, skipped=skipped)] == [1]
    assert skipped == {"malformed_json": 1}


def test_preference_pairs_history_and_identical():
    rows = [json.loads(x) for x in (CORPUS / "preference/pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    ctx = Context(path="preference/pairs.jsonl")
    (p,) = preference.convert(rows[0], ctx)
    assert (p.source, p.task, p.split) == ("medicalgpt_reward", "consult", "train")
    (q,) = preference.convert(rows[1], ctx)
    assert [m.role for m in q.prompt] == ["user", "assistant", "user"] and q.task == "general"
    with pytest.raises(Unusable) as e:
        preference.convert(rows[2], ctx)
    assert e.value.reason == "identical_pair"


def test_alpaca_sharegpt_identity():
    ctx = Context(
        path="instructions/x.jsonl",
        options={
            "identity": {"name": "小儿助手", "author": "某团队"},
            "tasks_by_source": {"medicalgpt_sft": "consult"},
        },
    )
    (a,) = instructions.convert(first("instructions/alpaca_general.jsonl"), ctx)
    assert a.messages[0].content == "把下面这句话改写得更礼貌一些。\n把东西给我拿过来。" and a.task == "general"
    (i,) = instructions.convert(first("instructions/identity.jsonl"), ctx)
    assert i.messages[1].content == "我是小儿助手，由某团队开发的儿科助手。"
    with pytest.raises(Unusable, match="unfilled_placeholder"):
        instructions.convert(first("instructions/identity.jsonl"), Context(path="x.jsonl"))
    rows = [json.loads(x) for x in (CORPUS / "instructions/sharegpt.jsonl").read_text(encoding="utf-8").splitlines()]
    (s,) = instructions.convert(rows[0], ctx)
    assert len(s.messages) == 4 and s.task == "consult" and s.source == "medicalgpt_sft"
    (t,) = instructions.convert(rows[1], ctx)
    assert [m.role for m in t.messages] == ["user", "assistant"]  # trailing user turn dropped


def test_pretrain_and_benchmark():
    (t,) = pretrain.convert(first("pretrain/text.jsonl"), Context(path="pretrain/text.jsonl"))
    assert t.source == "cmeee" and t.id == "fx-pt-001"
    (b,) = benchmark.convert(first("benchmarks/cmmlu_medical.jsonl"), Context(path="b.jsonl"))
    assert b.suite == "cmmlu_med" and b.choices == ["逐渐增快", "逐渐减慢", "保持不变", "先减慢后增快"]
    assert b.answer == 1 and b.reference == "B" and b.subject == "clinical_knowledge" and b.split == "test"
    assert "B. 逐渐减慢" in b.prompt[0].content
    csv_row = {"Question": "问题", "A": "甲", "B": "乙", "C": "丙", "D": "丁", "Answer": "D"}
    assert benchmark.detect(set(csv_row))
    (c,) = benchmark.convert(csv_row, Context(path="test/anatomy.csv"))
    assert c.answer == 3 and c.subject == "anatomy"
