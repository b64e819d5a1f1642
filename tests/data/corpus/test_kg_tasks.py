"""KG → task records: coverage per intent, determinism, stability under a growing table, pair quality."""

import os
import random
import re
import subprocess
import sys

import pytest

from pedgpt.data.corpus import kg_tasks
from pedgpt.data.schema import Disease, from_dict, to_dict


def _disease(name, symptoms, **kw):
    base = dict(
        desc=f"{name}是一种示例疾病，用于测试。",
        cause="由某种示例病毒引起。",
        susceptible_people="多见于1至3岁的幼儿。",
        checks=["血常规", "咽部检查"],
        treat_way=["对症治疗"],
        treat_detail="以退热和补液为主。",
        common_drug=["对乙酰氨基酚"],
        departments=["儿科"],
        prevent="勤洗手。",
        nursing="多喝水，精神差时就医。",
        complications=["脱水"],
        source="test_kg",
    )
    base.update(kw)
    return Disease(name=name, symptoms=symptoms, **base)


A = _disease("甲病", ["发热", "咳嗽", "流涕", "咽痛"])
B = _disease("乙病", ["发热", "咳嗽", "喘息", "呼吸急促"])
C = _disease("丙病", ["皮疹", "瘙痒"], susceptible_people="见于新生儿。")
SHARER = _disease("丁病", ["发热", "咳嗽", "流涕", "咽痛", "头痛"])


def _all_records(d, table, seed=0):
    return {
        "medkqa": kg_tasks.medkqa_items(d, seed),
        "trerecom": kg_tasks.trerecom_items(d, seed),
        "evidiag": kg_tasks.evidiag_items(d, table, seed),
        "pref": kg_tasks.preference_pairs(d, table, seed),
        "cpt": kg_tasks.cpt_texts(d),
    }


def _dicts(records):
    return {k: [to_dict(r) for r in v] for k, v in records.items()}


def test_intents_per_task_and_empty_fields_skipped():
    intents = {r.meta["intent"] for r in kg_tasks.medkqa_items(A, 0)}
    assert intents == {"desc", "cause", "symptoms", "susceptible", "checks", "complications", "prevent", "care"}
    assert {r.meta["intent"] for r in kg_tasks.trerecom_items(A, 0)} == {"treatment", "drug", "department", "plan"}
    sparse = _disease("戊病", ["发热", "咳嗽"], prevent="", complications=[], checks=[])
    intents = {r.meta["intent"] for r in kg_tasks.medkqa_items(sparse, 0)}
    assert intents == {"desc", "cause", "symptoms", "susceptible", "care"}
    evi = kg_tasks.evidiag_items(sparse, [sparse, A], 0)
    assert [r.meta["intent"] for r in evi] == ["case", "case", "case"]  # no checks → no follow-up turn
    assert all(r.task == "medkqa" for r in kg_tasks.medkqa_items(A, 0))
    assert all(r.task == "trerecom" for r in kg_tasks.trerecom_items(A, 0))
    assert all(r.meta["disease"] == "甲病" and r.source == "test_kg" for r in kg_tasks.medkqa_items(A, 0))


def test_deterministic_and_seed_dependent():
    table = [A, B, C]
    assert _dicts(_all_records(A, table, 0)) == _dicts(_all_records(A, table, 0))
    seeds = [_dicts(_all_records(A, table, s)) for s in range(4)]
    assert any(seeds[0]["medkqa"] != other["medkqa"] for other in seeds[1:])


def test_rng_does_not_use_python_salted_hash():
    code = "from pedgpt.data.corpus import kg_tasks; print(kg_tasks.record_rng(0, 'x', '甲病', 'sft').random())"
    outs = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        outs.add(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )
    assert len(outs) == 1


def test_adding_a_disease_leaves_others_unchanged():
    before = _dicts(_all_records(A, [A, B]))
    after_unrelated = _dicts(_all_records(A, [C, A, B]))
    assert before == after_unrelated
    with_sharer = _all_records(A, [A, B, SHARER])
    for kind in ("medkqa", "trerecom", "cpt"):
        assert [to_dict(r) for r in with_sharer[kind]] == before[kind]
    # EviDiag: a case may only change by naming the new disease as a distractor.
    for old, new in zip(before["evidiag"], with_sharer["evidiag"]):
        assert old == to_dict(new) or "丁病" in new.response


def test_evidiag_cases_name_diagnosis_and_distractors():
    table = [A, B, C, SHARER]
    items = kg_tasks.evidiag_items(A, table, 0)
    assert len(items) == 4 and all(r.task == "evidiag" for r in items)
    for r in items:
        assert "甲病" in r.response
        assert "丁病" in r.messages[-1].content or "乙病" in r.messages[-1].content  # symptom-sharing rivals
        assert "丙病" not in r.response  # shares no symptom
        assert any(s in r.messages[0].content for s in A.symptoms)
    multi = [r for r in items if r.meta["intent"] == "case_followup"]
    assert len(multi) == 1 and len(multi[0].messages) == 4
    assert "血常规" in multi[0].messages[2].content


def test_case_age_follows_population():
    rng = random.Random(0)
    for _ in range(20):
        age = kg_tasks.case_age("多见于6个月至2岁的婴幼儿。", rng)
        m = re.fullmatch(r"(?:(\d+)岁)?(?:(\d+)个月)?", age)
        months = int(m.group(1) or 0) * 12 + int(m.group(2) or 0)
        assert 6 <= months <= 24, age
        years = kg_tasks.case_age("多见于5至15岁的儿童。", rng)
        assert 5 <= int(years.rstrip("岁")) <= 14, years
        assert kg_tasks.case_age("见于新生儿。", rng).startswith("出生")


def test_drug_answers_defer_to_doctor():
    for d in (A, B, C):
        drug = [r for r in kg_tasks.trerecom_items(d, 0) if r.meta["intent"] == "drug"]
        assert len(drug) == 1 and "遵医嘱" in drug[0].response


def test_preference_pairs_chosen_better():
    table = [A, B, C, SHARER]
    pairs = [p for d in table for s in range(3) for p in kg_tasks.preference_pairs(d, table, s)]
    assert len(pairs) >= 8 * len(table)
    for p in pairs:
        assert p.chosen != p.rejected
        assert len(p.chosen) > len(p.rejected)
        assert "儿科" in p.chosen and any(w in p.chosen for w in ("就诊", "就医", "医生"))  # when to see whom
        assert len(p.prompt) == 1 and p.prompt[0].role == "user"
    assert len({p.meta["rejected_style"] for p in pairs}) >= 3
    assert {p.task for p in pairs} == {"medkqa", "evidiag", "trerecom"}


def test_cpt_and_general_records():
    texts = kg_tasks.cpt_texts(A)
    assert len(texts) == 6 and all("甲病" in t.text for t in texts)
    general = kg_tasks.general_instructions()
    assert 25 <= len(general) <= 40
    assert all(r.task == "general" for r in general)
    assert len({r.id for r in general}) == len(general)


@pytest.mark.parametrize("d", [A, B, C])
def test_records_round_trip(d):
    for recs in _all_records(d, [A, B, C]).values():
        for r in recs:
            assert from_dict(to_dict(r)) == r
