"""Consultation records: single turn, history, BianQue strings, reference-free questions."""

import pytest

from pedgpt.data.corpus.sources import Context, Unusable, source_name
from pedgpt.data.corpus.sources.consult import convert, detect, unroll_speakers

OPTS = {"reference_free_suites": {"webmedqa": "webmedqa"}, "tasks_by_source": {"bentsao": "medkqa"}}


def ctx():
    return Context(path="qa/file.jsonl", options=OPTS)


def test_single_turn_keeps_id_split_source():
    row = {
        "id": "q1",
        "src": "Zhongjing:data/huatuo26M_test.json",
        "question": "孩子发烧怎么办",
        "answer": "多喝水，观察精神状态。",
        "history": [],
        "split": "train",
    }
    assert detect(set(row))
    (r,) = convert(row, ctx())
    assert (r.id, r.source, r.split, r.task) == ("q1", "huatuo26m", "train", "consult")
    assert [(m.role, m.content) for m in r.messages] == [
        ("user", "孩子发烧怎么办"),
        ("assistant", "多喝水，观察精神状态。"),
    ]


def test_history_becomes_turns_and_groups_by_first_question():
    row = {
        "src": "Zhongjing:data/CMtMedQA_test.json",
        "question": "第二问",
        "answer": "第二答",
        "history": [["第一问", "第一答"]],
    }
    (r,) = convert(row, ctx())
    assert [m.content for m in r.messages] == ["第一问", "第一答", "第二问", "第二答"]
    (r0,) = convert({"src": row["src"], "question": "第一问", "answer": "第一答"}, ctx())
    assert r.meta["dialogue"] == r0.meta["dialogue"]  # same dialogue → same split group


def test_bianque_string_is_unrolled():
    hist, q = unroll_speakers("病人：孩子拉肚子\\n医生：几天了？\\n病人：两天\\n医生：")
    assert [(m.role, m.content) for m in hist] == [("user", "孩子拉肚子"), ("assistant", "几天了？")]
    assert q == "两天"


def test_missing_answer_reference_free_or_skipped():
    row = {"id": "w1", "src": "PULSE-EVAL:data/webMedQA.jsonl", "question": "孩子流鼻血怎么办", "answer": None}
    (e,) = convert(row, ctx())
    assert e.kind == "eval" and e.suite == "webmedqa" and e.reference is None and e.split == "test"
    with pytest.raises(Unusable) as u:
        convert({**row, "src": "ChatMed:x"}, ctx())
    assert u.value.reason == "empty_answer"


def test_task_by_source_and_upstream_aliases():
    (r,) = convert({"src": "Huatuo-Llama-Med-Chinese:data/llama_data.json", "instruct": "问", "output": "答答"}, ctx())
    assert (r.source, r.task) == ("bentsao", "medkqa")
    (r,) = convert({"query": "问", "response": "答答"}, Context(path="d/ChatMed_consult.json", options=OPTS))
    assert r.source == "chatmed"


@pytest.mark.parametrize(
    "src,name",
    [
        ("Zhongjing:data/huatuo26M_test.json", "huatuo26m"),
        ("Zhongjing:data/CMtMedQA_test.json", "cmtmedqa"),
        ("HuatuoGPT:eval/Med-dialog_100.json", "meddialog"),
        ("BianQue:data/cMedialog_example.csv", "bianque"),
        ("DoctorGLM:Doctor_GLM/GenMedGPT-5k-ch.json", "genmedgpt"),
        ("Chinese-medical-dialogue-data:x.csv", "cmd"),
        ("DISCOpen-MedBox-DialoDiagnosis:OpenMedicalChatBox/Data/mz10/train_set.json", "mz10"),
        ("MedicalKGQA:data/medical_3.json", "xywy_kg"),
    ],
)
def test_source_names(src, name):
    assert source_name(src, "any/file.jsonl") == name
