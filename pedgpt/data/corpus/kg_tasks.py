"""Knowledge graph → task records, as the paper builds PedCorpus from a disease knowledge graph.

Each :class:`~pedgpt.data.schema.Disease` becomes MedKQ&A and TreRecom question–answer pairs, EviDiag
cases (single and multi-turn, with distractor diseases), preference pairs and CPT paragraphs. All
functions are pure and deterministic: the template of a record is drawn from
``random.Random(sha256(seed, source, record key))``, so adding a disease never changes another
disease's records. The one exception is by design: EviDiag distractors come from the whole table, ranked
by (number of shared symptoms, a per-pair hash) — rendezvous hashing — so a new disease changes only
the cases where it outranks the distractors named before. Phrasing lives in :mod:`pedgpt.data.corpus.kg_templates`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Sequence
from typing import Any

from pedgpt.data.corpus import kg_templates as T
from pedgpt.data.schema import Disease, Instruction, Message, PreferencePair, PretrainText, stable_id

_FORMATTER = string.Formatter()
_AGE_RANGES = [  # (pattern, unit of the captured numbers)
    (re.compile(r"(\d+)个月至(\d+)岁"), "month-year"),
    (re.compile(r"(\d+)至(\d+)个月"), "month"),
    (re.compile(r"(\d+)至(\d+)岁"), "year"),
    (re.compile(r"(\d+)个月以[内下]"), "months-below"),
    (re.compile(r"(\d+)岁以下"), "years-below"),
    (re.compile(r"(\d+)岁以上"), "years-above"),
]


def hash_int(*parts: Any) -> int:
    """A 64-bit integer from the JSON of ``parts`` (sha256; unlike ``hash()``, stable across runs)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def record_rng(seed: int, source: str, *key: Any) -> random.Random:
    """The RNG for one record: seeded from (seed, source, record key) only."""
    return random.Random(hash_int(seed, source, *key))


def fields_of(d: Disease) -> dict[str, str]:
    """Template fields of a disease: text fields as they are, lists joined with "、"."""
    join = "、".join
    return {
        "name": d.name,
        "desc": d.desc,
        "cause": d.cause,
        "symptoms": join(d.symptoms),
        "people": d.susceptible_people,
        "checks": join(d.checks),
        "treat_way": join(d.treat_way),
        "treat_detail": d.treat_detail,
        "drugs": join(d.common_drug),
        "departments": join(d.departments),
        "dept": d.departments[0] if d.departments else "儿科",
        "prevent": d.prevent,
        "nursing": d.nursing,
        "complications": join(d.complications),
    }


def template_fields(template: str) -> set[str]:
    """The ``str.format`` field names of a template."""
    return {f for _, f, _, _ in _FORMATTER.parse(template) if f}


def usable(templates: Sequence[str], values: dict[str, str]) -> list[int]:
    """Indices of the templates whose fields are all non-empty in ``values``."""
    return [i for i, t in enumerate(templates) if all(values.get(f) for f in template_fields(t))]


def has_intent(d: Disease, intent: str) -> bool:
    """Whether ``d`` yields a record for ``intent``: the intent's own fields are non-empty and each template
    list the record draws from (``INTENT_TEMPLATES``) has a template whose fields are all non-empty."""
    if not all(getattr(d, f) for f in T.INTENT_FIELDS[intent]):
        return False
    values = {**fields_of(d), **dict.fromkeys(T.CASE_FIELDS, "-")}
    return all(usable(ts, values) for ts in T.INTENT_TEMPLATES[intent])


def _pick(rng: random.Random, templates: Sequence[str], values: dict[str, str]) -> tuple[int, str]:
    """Draw one template whose fields are all non-empty; return (its index in ``templates``, filled text).

    Callers check :func:`has_intent` first, so a usable template always exists."""
    i = rng.choice(usable(templates, values))
    return i, templates[i].format(**values)


def _instruction(d: Disease, intent: str, turns: list[str], template: tuple, variant: int = 0) -> Instruction:
    roles = ["user", "assistant"] * (len(turns) // 2)
    return Instruction(
        messages=[Message(r, c) for r, c in zip(roles, turns)],
        task=T.INTENT_TASK[intent],
        source=d.source,
        id=stable_id(d.source, d.name, "sft", intent, variant, template),
        meta={"disease": d.name, "intent": intent},
    )


def _qa_items(d: Disease, seed: int, intents: Sequence[str]) -> list[Instruction]:
    values, out = fields_of(d), []
    for intent in intents:
        if not has_intent(d, intent):
            continue
        rng = record_rng(seed, d.source, d.name, "sft", intent)
        qi, q = _pick(rng, T.QUESTIONS[intent], values)
        ai, a = _pick(rng, T.ANSWERS[intent], values)
        out.append(_instruction(d, intent, [q, a], (qi, ai)))
    return out


def medkqa_items(disease: Disease, seed: int = 0) -> list[Instruction]:
    """Knowledge questions: definition, cause, symptoms, susceptible people, checks, complications,
    prevention, home care — one per intent whose field is non-empty."""
    return _qa_items(disease, seed, T.MEDKQA_INTENTS)


def trerecom_items(disease: Disease, seed: int = 0) -> list[Instruction]:
    """Treatment recommendation: treatment, drugs (always "遵医嘱"), department, a full care plan."""
    return _qa_items(disease, seed, T.TRERECOM_INTENTS)


# --- EviDiag ------------------------------------------------------------------------------------------
def case_age(people: str, rng: random.Random) -> str:
    """An age drawn from the susceptible-population text (e.g. "6个月至2岁" → "1岁3个月")."""
    for pattern, unit in _AGE_RANGES:
        m = pattern.search(people)
        if m:
            a, b = int(m.group(1)), int(m.group(m.lastindex))
            lo, hi = {
                "month-year": (a, 12 * b),
                "month": (a, b),
                "year": (12 * max(a, 1), 12 * min(b, 14)),
                "months-below": (1, a),
                "years-below": (6, 12 * a - 1),
                "years-above": (12 * a, 12 * min(a + 5, 14)),
            }[unit]
            break
    else:
        if "新生儿" in people:
            return f"出生{rng.randint(3, 14)}天"
        lo, hi = (
            (2, 11)
            if "婴儿" in people
            else (36, 120)
            if "学龄前" in people
            else (72, 144)
            if "学龄" in people
            else (24, 120)
        )
    months = rng.randint(lo, max(lo, hi))
    if months < 12:
        return f"{months}个月"
    return f"{months // 12}岁" + (f"{months % 12}个月" if months % 12 and months < 36 else "")


def rivals(
    d: Disease, all_diseases: Sequence[Disease], shown: Sequence[str], seed: int, k: int
) -> list[tuple[Disease, list[str]]]:
    """Up to ``k`` other diseases sharing the most of the ``shown`` symptoms (ties by a per-pair hash)."""
    scored = []
    for c in all_diseases:
        shared = [s for s in shown if s in c.symptoms]
        if c.name != d.name and shared:
            scored.append((len(shared), hash_int(seed, d.name, c.name), c, shared))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [(c, shared) for _, _, c, shared in scored[:k]]


def _differential(d: Disease, shown: Sequence[str], found: list[tuple[Disease, list[str]]]) -> str:
    parts = []
    for c, shared in found:
        unique = [s for s in c.symptoms if s not in shown and s not in d.symptoms][:2]
        if unique:
            parts.append(T.DIFF_UNIQUE.format(rival=c.name, shared="、".join(shared), unique="、".join(unique)))
        else:
            parts.append(
                T.DIFF_PEOPLE.format(
                    rival=c.name, shared="、".join(shared), rival_people=c.susceptible_people or "人群分布不同。"
                )
            )
    return "".join(parts) or T.NO_RIVAL


def _case(d: Disease, all_diseases: Sequence[Disease], seed: int, rng: random.Random) -> dict[str, str]:
    """Case fields: a question drawn from the symptoms and population, the reasoning and differential."""
    n = min(len(d.symptoms), rng.choice([3, 4, 5]))
    shown = [d.symptoms[i] for i in sorted(rng.sample(range(len(d.symptoms)), n))]
    age = case_age(d.susceptible_people, rng)
    infant = "天" in age or ("个月" in age and "岁" not in age)
    found = rivals(d, all_diseases, shown, seed, k=rng.choice([1, 2]))
    values = fields_of(d)
    values.update(
        age=age,
        child=rng.choice(["宝宝", "男婴", "女婴"] if infant else ["男孩", "女孩", "孩子"]),
        duration=rng.choice(T.DURATIONS),
        case_symptoms="、".join(shown),
        rivals="、".join(c.name for c, _ in found) or "其他常见病",
        checks_done="、".join(d.checks[:2]),
        differential=_differential(d, shown, found),
    )
    values["reasons"] = T.REASON.format(matched="、".join(shown), **values)
    return values


def evidiag_items(
    disease: Disease, all_diseases: Sequence[Disease], seed: int = 0, n_cases: int = 3
) -> list[Instruction]:
    """``n_cases`` single-turn cases (symptoms + age → diagnosis, reasoning, distractors) and one
    two-turn case whose second user turn brings the check results."""
    d, out = disease, []
    if has_intent(d, "case"):
        for v in range(n_cases):
            rng = record_rng(seed, d.source, d.name, "sft", "case", v)
            values = _case(d, all_diseases, seed, rng)
            qi, q = _pick(rng, T.CASE_QUESTIONS, values)
            ai, a = _pick(rng, T.CASE_ANSWERS, values)
            out.append(_instruction(d, "case", [q, a], (qi, ai), variant=v))
    if has_intent(d, "case_followup"):
        rng = record_rng(seed, d.source, d.name, "sft", "case_followup")
        values = _case(d, all_diseases, seed, rng)
        picks = [
            _pick(rng, ts, values) for ts in (T.CASE_QUESTIONS, T.FOLLOWUP_FIRST, T.FOLLOWUP_SECOND, T.FOLLOWUP_ANSWERS)
        ]
        out.append(_instruction(d, "case_followup", [p[1] for p in picks], tuple(p[0] for p in picks)))
    return out


# --- preference pairs ---------------------------------------------------------------------------------
def _clause(text: str) -> str:
    return re.split(r"[，。；]", text, maxsplit=1)[0]


def _gist(d: Disease, intent: str) -> str:
    """The first fragment of the key field: what a terse, incomplete answer would say."""

    def first(xs: list[str]) -> str:
        return xs[0] if xs else d.name

    return {
        "desc": _clause(d.desc),
        "cause": _clause(d.cause),
        "symptoms": "会" + first(d.symptoms),
        "checks": "查个" + first(d.checks),
        "complications": "可能会" + first(d.complications),
        "prevent": _clause(d.prevent),
        "care": _clause(d.nursing),
        "treatment": first(d.treat_way),
        "drug": "吃点" + first(d.common_drug),
        "department": "挂" + first(d.departments),
        "case": "应该是" + d.name,
    }[intent]


def preference_pairs(disease: Disease, all_diseases: Sequence[Disease], seed: int = 0) -> list[PreferencePair]:
    """One pair per intent of ``PREFERENCE_INTENTS``: chosen = empathic opening, numbered content and
    when to see a doctor; rejected = a one-liner, a dismissive, overconfident or evasive reply."""
    d, out = disease, []
    for intent in T.PREFERENCE_INTENTS:
        if not has_intent(d, intent):
            continue
        rng = record_rng(seed, d.source, d.name, "pref", intent)
        if intent == "case":
            values = _case(d, all_diseases, seed, rng)
            qi, question = _pick(rng, T.CASE_QUESTIONS, values)
            bi, body = _pick(rng, T.CASE_ANSWERS, values)
        else:
            values = fields_of(d)
            qi, question = _pick(rng, T.QUESTIONS[intent], values)
            points = [T.POINTS[intent][i] for i in usable(T.POINTS[intent], values)]
            bi, body = -1, "\n".join(f"{i}. {p.format(**values)}" for i, p in enumerate(points, 1))
        oi, opener = _pick(rng, T.OPENERS, values)
        ci, closer = _pick(rng, T.CLOSERS, values)
        style = rng.choice(sorted(T.REJECTED))
        ri, rejected = _pick(rng, T.REJECTED[style], {**values, "gist": _gist(d, intent)})
        out.append(
            PreferencePair(
                prompt=[Message("user", question)],
                chosen=f"{opener}\n{body}\n{closer}",
                rejected=rejected,
                task=T.INTENT_TASK[intent],
                source=d.source,
                id=stable_id(d.source, d.name, "pref", intent, (qi, bi, oi, ci, style, ri)),
                meta={"disease": d.name, "intent": intent, "rejected_style": style},
            )
        )
    return out


# --- CPT and general ----------------------------------------------------------------------------------
def cpt_texts(disease: Disease) -> list[PretrainText]:
    """Encyclopedia-style paragraphs (overview, presentation, diagnosis, treatment, prevention, advice),
    leaving out a paragraph whose fields are empty."""
    values, out = fields_of(disease), []
    for i in usable(T.CPT_PARAGRAPHS, values):
        out.append(
            PretrainText(
                text=T.CPT_PARAGRAPHS[i].format(**values),
                source=disease.source,
                id=stable_id(disease.source, disease.name, "cpt", i),
            )
        )
    return out


def general_instructions(source: str = "pedgpt_demo") -> list[Instruction]:
    """The team-written general instructions (everyday and general-health questions), task "general"."""
    return [
        Instruction(
            messages=[Message("user", q), Message("assistant", a)],
            task="general",
            source=source,
            id=stable_id(source, "general", q),
            meta={"intent": "general"},
        )
        for q, a in T.GENERAL_QA
    ]
