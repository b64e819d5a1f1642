"""The bundled demo knowledge table and the corpus generated from it."""

import dataclasses
from collections import Counter
from statistics import mean

import pytest

from pedgpt.data.corpus.demo import build_demo_corpus, load_demo_kg, split_of
from pedgpt.data.schema import PEDIATRIC_TASKS, Disease, from_dict, to_dict

REQUIRED = [
    "普通感冒",
    "流行性感冒",
    "手足口病",
    "水痘",
    "麻疹",
    "幼儿急疹",
    "猩红热",
    "百日咳",
    "毛细支气管炎",
    "支气管肺炎",
    "支原体肺炎",
    "急性喉炎",
    "轮状病毒肠炎",
    "肠套叠",
    "婴儿湿疹",
    "新生儿黄疸",
    "热性惊厥",
    "缺铁性贫血",
    "川崎病",
    "过敏性紫癜",
    "尿路感染",
    "鹅口疮",
    "蛲虫病",
    "龋齿",
]


@pytest.fixture(scope="module")
def corpus():
    return build_demo_corpus(seed=0)


def test_demo_kg_complete():
    kg = load_demo_kg()
    assert len(kg) >= 40
    assert len({d.name for d in kg}) == len(kg)
    assert set(REQUIRED) <= {d.name for d in kg}
    for d in kg:
        for f in dataclasses.fields(Disease):
            if f.name not in ("split", "kind"):
                assert getattr(d, f.name), f"{d.name}: empty {f.name}"
        assert d.source == "pedgpt_demo"


def test_demo_kg_is_conservative_about_aspirin():
    for d in load_demo_kg():
        if d.name == "川崎病":
            assert "医生" in d.treat_detail
            continue
        assert not any("阿司匹林" in x for x in d.common_drug), d.name
        text = d.treat_detail + d.nursing
        assert "阿司匹林" not in text or "禁用阿司匹林" in text, d.name


def test_symptoms_overlap_across_diseases():
    counts = Counter(s for d in load_demo_kg() for s in set(d.symptoms))
    assert counts["发热"] >= 10 and counts["咳嗽"] >= 8 and counts["皮疹"] >= 6
    kg = load_demo_kg()
    shared = [d for d in kg if any(counts[s] > 1 for s in d.symptoms)]
    assert len(shared) == len(kg)  # every disease can have an EviDiag distractor


def test_corpus_sizes_and_tasks(corpus):
    cpt, sft, pref = corpus["cpt"], corpus["sft"], corpus["preference"]
    assert len(cpt) >= 200
    assert len(sft) >= 300
    tasks = Counter((r.task, r.split) for r in sft)
    for task in (*PEDIATRIC_TASKS, "general"):
        assert tasks[(task, "train")] > 0 and tasks[(task, "dev")] > 0, task
    assert sum(1 for p in pref if p.split == "dev") >= 64
    assert {p.task for p in pref} == set(PEDIATRIC_TASKS)


def test_split_by_disease(corpus):
    splits: dict[str, set] = {}
    for recs in (corpus["sft"], corpus["preference"]):
        for r in recs:
            assert r.split in ("train", "dev")
            if "disease" in r.meta:
                splits.setdefault(r.meta["disease"], set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    dev = [name for name, s in splits.items() if s == {"dev"}]
    assert 0.1 <= len(dev) / len(splits) <= 0.3
    assert split_of("甲病") == split_of("甲病")


def test_preference_quality(corpus):
    pref = corpus["preference"]
    assert all(p.chosen != p.rejected for p in pref)
    assert mean([len(p.chosen) for p in pref]) > 3 * mean([len(p.rejected) for p in pref])
    assert len({p.meta["rejected_style"] for p in pref}) == 4


def test_deterministic_and_ids_unique(corpus):
    again = build_demo_corpus(seed=0)
    for kind in corpus:
        assert [to_dict(r) for r in corpus[kind]] == [to_dict(r) for r in again[kind]]
        ids = [r.id for r in corpus[kind]]
        assert len(set(ids)) == len(ids), kind
    other = build_demo_corpus(seed=1)
    assert [to_dict(r) for r in other["sft"]] != [to_dict(r) for r in corpus["sft"]]
    assert [r.split for r in other["sft"]] == [r.split for r in corpus["sft"]]


def test_every_record_round_trips(corpus):
    for recs in corpus.values():
        for r in recs:
            assert from_dict(to_dict(r)) == r
