"""Symptom → diagnosis cases (MZ-10, IMCS-21, DXY) → EviDiag instructions.

A case has a diagnosis and explicit symptoms (what the patient reports) and implicit ones (what the doctor
learns by asking), each positive, negative or uncertain. Values may be booleans, ``"1"/"0"/"2"``
(MZ-10's legend: positive/negative/uncertain) or a plain list (all positive). Accepted spellings:
``disease | diagnosis | disease_tag``, ``explicit_symptoms | explicit_inform_slots | explicit_info.Symptom``
(same for implicit), optionally nested under ``goal``; ``self_report`` is used as the opening turn.

With implicit symptoms the item is two turns: the case → the doctor asks about them → the answers →
the diagnosis with its evidence. The wording is drawn from team-written templates by a RNG seeded from
(seed, source, case id).

Types: the diagnosis, ``self_report``, ``src`` / ``dataset`` are text (``null`` = absent); symptom slots an
object ``{symptom: value}`` (value a boolean, an integer 0/1/2 or one of the strings above) or a list of
symptom names. Any other type is a :class:`~pedgpt.data.corpus.sources.base.BadValue`
(``bad_type:<field>``); a string value outside the legend is skipped as ``unknown_symptom_value``.
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import (
    Context,
    Unusable,
    bad_type,
    checked_text,
    first_text,
    id_of,
    list_of,
    rng_for,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.schema import Instruction, Message, stable_id

POSITIVE, NEGATIVE, UNCERTAIN = "positive", "negative", "uncertain"
_VALUES = {"1": POSITIVE, "true": POSITIVE, "0": NEGATIVE, "false": NEGATIVE, "2": UNCERTAIN}

OPENINGS = (
    "孩子最近出现{pos}。{neg}请问可能是什么病？",
    "我家宝宝这几天有{pos}的表现。{neg}想请医生帮忙看看是什么问题。",
    "医生您好，孩子目前主要是{pos}。{neg}这是什么原因引起的？",
)
NEG_CLAUSE = ("目前没有{neg}。", "暂时没发现{neg}。")
ASKS = (
    "为了进一步判断，请问孩子有没有{ask}？",
    "还需要了解几个情况：孩子是否出现过{ask}？",
    "请再告诉我，孩子最近有{ask}吗？",
)
REPLIES = {POSITIVE: "有{s}", NEGATIVE: "没有{s}", UNCERTAIN: "{s}不太确定"}
DIAGNOSES = (
    "根据{evidence}，考虑为{disease}。建议到医院儿科进一步检查确诊，并在医生指导下治疗。",
    "综合{evidence}这些情况，孩子比较可能是{disease}。请尽快就医，由医生结合检查结果明确诊断。",
    "从{evidence}来看，初步判断为{disease}，最终诊断还需要医生面诊和相关检查。",
)


def detect(keys: set[str]) -> bool:
    has_dx = bool(keys & {"disease", "diagnosis", "disease_tag"})
    has_sx = bool(
        keys
        & {
            "explicit_symptoms",
            "implicit_symptoms",
            "explicit_info",
            "implicit_info",
            "explicit_inform_slots",
            "implicit_inform_slots",
            "goal",
        }
    )
    return has_dx and has_sx


def _value_key(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value in (0, 1, 2):
        return str(value)
    if isinstance(value, str):
        return value.strip().lower()
    raise bad_type(field, "a boolean, 0/1/2 or one of the strings '0', '1', '2', 'true', 'false'", value)


def symptom_values(raw: Any, field: str = "symptoms") -> dict[str, str]:
    """``{symptom: value}`` (bool, "0"/"1"/"2", ...) or a list → ``{symptom: positive|negative|uncertain}``."""
    if isinstance(raw, dict) and "Symptom" in raw:
        raw, field = raw["Symptom"], f"{field}.Symptom"
    if raw is None or isinstance(raw, list):
        return {s: POSITIVE for s in list_of(raw, field)}
    if not isinstance(raw, dict):
        raise bad_type(field, "an object {symptom: value} or a list of symptoms", raw)
    out: dict[str, str] = {}
    for name, value in raw.items():
        key = _value_key(value, f"{field}.{name}")
        if key not in _VALUES:
            raise Unusable("unknown_symptom_value")
        name = checked_text(name, field)
        if name:
            out[name] = _VALUES[key]
    return out


def _slots(row: dict[str, Any], kind: str) -> dict[str, str]:
    goal = row.get("goal")
    if goal is not None and not isinstance(goal, dict):
        raise bad_type("goal", "an object", goal)
    for key in (f"{kind}_symptoms", f"{kind}_inform_slots", f"{kind}_info"):
        for holder, prefix in ((row, ""), (goal or {}, "goal.")):
            if holder.get(key) not in (None, {}, []):
                return symptom_values(holder[key], prefix + key)
    return {}


def _named(values: dict[str, str], which: str) -> list[str]:
    return [s for s, v in values.items() if v == which]


def _opening(rng, explicit: dict[str, str], self_report: str) -> str:
    if self_report:
        return self_report
    pos, neg = _named(explicit, POSITIVE), _named(explicit, NEGATIVE)
    neg_text = rng.choice(NEG_CLAUSE).format(neg="、".join(neg)) if neg else ""
    return rng.choice(OPENINGS).format(pos="、".join(pos) or "一些不适", neg=neg_text)


def _evidence(values: dict[str, str]) -> str:
    pos, neg = _named(values, POSITIVE), _named(values, NEGATIVE)
    parts = [f"有{'、'.join(pos)}"] if pos else []
    if neg:
        parts.append(f"没有{'、'.join(neg)}")
    return "，".join(parts) or "目前的表现"


def convert(row: dict[str, Any], ctx: Context) -> list[Instruction]:
    disease = first_text(row, ("disease", "diagnosis", "disease_tag"))
    if not disease:
        raise Unusable("case_without_diagnosis")
    explicit, implicit = _slots(row, "explicit"), _slots(row, "implicit")
    self_report = text_of(row.get("self_report"), "self_report")
    if not self_report and not _named(explicit, POSITIVE):  # nothing reported: open with what was found
        explicit, implicit = {**explicit, **implicit}, {}
    if not self_report and not _named(explicit, POSITIVE):
        raise Unusable("case_without_symptoms")
    source = source_name(first_text(row, ("src", "dataset")), ctx.path)
    rid = id_of(row.get("id")) or stable_id(source, disease, explicit, implicit, self_report)
    rng = rng_for(ctx.seed, source, rid)
    messages = [Message("user", _opening(rng, explicit, self_report))]
    if implicit:
        ask = "、".join(implicit)
        reply = "；".join(REPLIES[v].format(s=s) for s, v in implicit.items()) + "。"
        messages += [Message("assistant", rng.choice(ASKS).format(ask=ask)), Message("user", reply)]
    evidence = _evidence({**explicit, **implicit})
    messages.append(Message("assistant", rng.choice(DIAGNOSES).format(evidence=evidence, disease=disease)))
    meta = {"dialogue": rid, "diagnosis": disease}
    return [
        Instruction(
            messages=messages, task="evidiag", source=source, id=rid, split=split_of(row.get("split")), meta=meta
        )
    ]
