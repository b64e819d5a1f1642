"""Symptom → diagnosis cases (MZ-10, IMCS-21, DXY) → EviDiag instructions.

A case has a diagnosis and explicit symptoms (what the patient reports) and implicit ones (what the doctor
learns by asking), each positive, negative or uncertain. Values may be booleans, ``"1"/"0"/"2"``
(MZ-10's legend: positive/negative/uncertain) or a plain list (all positive). Accepted spellings:
``disease | diagnosis | disease_tag``, ``explicit_symptoms | explicit_inform_slots | explicit_info.Symptom``
(same for implicit), optionally nested under ``goal``; ``self_report`` is used as the opening turn.

With implicit symptoms the item is two turns: the case → the doctor asks about them → the answers →
the diagnosis with its evidence. The wording is drawn from team-written templates by a RNG seeded from
(seed, source, case id).
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, rng_for, source_name, text_of
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


def symptom_values(raw: Any) -> dict[str, str]:
    """``{symptom: value}`` (bool, "0"/"1"/"2", ...) or a list → ``{symptom: positive|negative|uncertain}``."""
    if isinstance(raw, dict) and "Symptom" in raw:
        raw = raw["Symptom"]
    if isinstance(raw, (list, tuple)):
        return {text_of(s): POSITIVE for s in raw if text_of(s)}
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        key = str(value).strip().lower()
        if key not in _VALUES:
            raise Unusable("unknown_symptom_value")
        out[text_of(name)] = _VALUES[key]
    return out


def _slots(row: dict[str, Any], kind: str) -> dict[str, str]:
    goal = row.get("goal") if isinstance(row.get("goal"), dict) else {}
    for key in (f"{kind}_symptoms", f"{kind}_inform_slots", f"{kind}_info"):
        for holder in (row, goal):
            if holder.get(key):
                return symptom_values(holder[key])
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
    disease = text_of(row.get("disease") or row.get("diagnosis") or row.get("disease_tag"))
    if not disease:
        raise Unusable("case_without_diagnosis")
    explicit, implicit = _slots(row, "explicit"), _slots(row, "implicit")
    self_report = text_of(row.get("self_report"))
    if not self_report and not _named(explicit, POSITIVE):  # nothing reported: open with what was found
        explicit, implicit = {**explicit, **implicit}, {}
    if not self_report and not _named(explicit, POSITIVE):
        raise Unusable("case_without_symptoms")
    source = source_name(row.get("src") or row.get("dataset"), ctx.path)
    rid = text_of(row.get("id")) or stable_id(source, disease, explicit, implicit, self_report)
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
        Instruction(messages=messages, task="evidiag", source=source, id=rid, split=row.get("split") or None, meta=meta)
    ]
