"""Symptom → diagnosis cases (MZ-10, DXY, IMCS-21 spellings) → EviDiag instructions."""

import json

import pytest

from helpers import FIXTURES
from pedgpt.data.corpus.sources import Context, Unusable
from pedgpt.data.corpus.sources.symptom_dx import convert, detect, symptom_values

FIX = FIXTURES / "corpus" / "diagnosis" / "mz10_cases.jsonl"
CASES = [json.loads(line) for line in FIX.read_text(encoding="utf-8").splitlines()]


def test_values_positive_negative_uncertain():
    assert symptom_values({"a": "1", "b": "0", "c": "2", "d": True, "e": False}) == {
        "a": "positive",
        "b": "negative",
        "c": "uncertain",
        "d": "positive",
        "e": "negative",
    }
    assert symptom_values({"Symptom": ["咳嗽"]}) == {"咳嗽": "positive"}
    with pytest.raises(Unusable):
        symptom_values({"a": "maybe"})


def test_two_turn_case_with_evidence():
    assert detect(set(CASES[0]))
    (r,) = convert(CASES[0], Context(path=str(FIX), seed=3))
    assert r.task == "evidiag" and r.source == "mz10" and r.split == "train"
    roles = [m.role for m in r.messages]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert (
        "腹泻" in r.messages[0].content and "没有呕吐" in r.messages[0].content or "没发现呕吐" in r.messages[0].content
    )
    assert r.messages[2].content == "有发热；有稀便；腹痛不太确定。"
    assert "小儿腹泻" in r.messages[3].content and "没有呕吐" in r.messages[3].content
    assert r.meta == {"dialogue": "fx-mz-001", "diagnosis": "小儿腹泻"}


def test_template_choice_is_seeded_and_stable():
    a = convert(CASES[0], Context(path=str(FIX), seed=3))[0]
    b = convert(CASES[0], Context(path=str(FIX), seed=3))[0]
    assert a.messages == b.messages
    wordings = {convert(CASES[0], Context(path=str(FIX), seed=s))[0].messages[-1].content for s in range(12)}
    assert len(wordings) > 1


def test_self_report_opens_dxy_case_and_empty_case_is_counted():
    (r,) = convert(CASES[3], Context(path=str(FIX)))
    assert r.source == "dxy" and r.messages[0].content.startswith("孩子一岁半")
    assert r.messages[2].content == "有食欲不振；没有呕吐。"
    with pytest.raises(Unusable) as e:
        convert(CASES[2], Context(path=str(FIX)))
    assert e.value.reason == "case_without_symptoms"


def test_imcs_spelling():
    row = {"diagnosis": "小儿发热", "self_report": "孩子发烧一天", "implicit_info": {"Symptom": {"咳嗽": "0"}}}
    (r,) = convert(row, Context(path="imcs21/train.json"))
    assert r.source == "imcs21" and r.messages[2].content == "没有咳嗽。"
