"""Both spellings of the xywy knowledge graph map to the same Disease fields."""

import json

from helpers import FIXTURES
from pedgpt.data.corpus.sources import Context
from pedgpt.data.corpus.sources.xywy_kg import convert, detect, richness

KG = FIXTURES / "corpus" / "kg"


def rows(name):
    return [json.loads(line) for line in (KG / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_shared_spelling():
    row = rows("kg_pediatric.jsonl")[0]
    assert detect(set(row))
    (d,) = convert(row, Context(path=str(KG / "kg_pediatric.jsonl")))
    assert d.name == "小儿急性喉炎" and d.source == "xywy_kg" and d.id == "fx-kg-01" and d.split == "train"
    assert d.symptoms == ["犬吠样咳嗽", "声音嘶哑", "吸气性喉鸣", "发热"]
    assert d.complications == ["喉梗阻"] and d.departments == ["儿科", "小儿内科"]
    assert d.nursing.startswith("保持室内空气湿润")
    assert d.treat_detail == "以药物治疗、雾化吸入为主，常用药物有布地奈德混悬液（须遵医嘱使用）。"


def test_upstream_medical_json_spelling():
    row = rows("medical.json")[0]
    assert detect(set(row))
    (d,) = convert(row, Context(path=str(KG / "medical.json")))
    assert d.symptoms == ["颈肩痛", "手麻", "头晕"]
    assert d.complications == ["椎间盘突出"] and d.departments == ["骨科"] and d.checks == ["颈椎核磁共振"]
    assert d.susceptible_people == "长期伏案工作的人" and d.treat_way == ["理疗", "药物治疗"]
    assert d.common_drug == ["布洛芬缓释胶囊", "甲钴胺片"]  # common + recommended, no repeat
    assert d.split is None and d.source == "xywy_kg"


def test_richness_counts_filled_fields():
    (a,) = convert({"name": "甲病", "symptoms": ["咳嗽"]}, Context(path="kg.jsonl"))
    (b,) = convert(
        {"name": "甲病", "symptoms": ["咳嗽"], "cause": "受凉", "checks": ["血常规"]}, Context(path="kg.jsonl")
    )
    assert (richness(a), richness(b)) == (1, 3)
