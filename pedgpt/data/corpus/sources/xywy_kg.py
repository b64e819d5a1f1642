"""The xywy (寻医问药) disease knowledge graph → :class:`~pedgpt.data.schema.Disease`.

Two spellings of the same graph are accepted: the field names of ``../shared/data/b_pediatric_kg``
(``symptoms, complications, checks, departments, susceptible_people, treat_way, nursing …``) and the
upstream ``medical.json`` names (``symptom, acompany, check, cure_department, easy_get, cure_way,
recommand_drug …``). The first non-empty alias wins; drug lists are merged without repeats.

Types: the text fields (and ``treat_cycle``, ``cure_prob`` … used in the treatment summary) are text, the
list fields a list of texts or one text split on separators (``null`` = absent); anything else is a
:class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``).
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import (
    Context,
    Unusable,
    first_text,
    id_of,
    list_of,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.schema import Disease, stable_id

#: Disease field → aliases, in order of preference.
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "desc": ("desc", "description"),
    "cause": ("cause",),
    "susceptible_people": ("susceptible_people", "easy_get"),
    "treat_detail": ("treat_detail", "drug_detail_text"),
    "prevent": ("prevent",),
    "nursing": ("nursing", "care"),
}
LIST_FIELDS: dict[str, tuple[str, ...]] = {
    "symptoms": ("symptoms", "symptom"),
    "checks": ("checks", "check"),
    "treat_way": ("treat_way", "cure_way"),
    "departments": ("departments", "cure_department"),
    "complications": ("complications", "acompany"),
}
DRUG_FIELDS: tuple[str, ...] = ("common_drug", "recommand_drug", "recommend_drug")
KG_KEYS = {"symptoms", "symptom", "acompany", "complications", "cure_department", "departments", "check", "checks"}


def detect(keys: set[str]) -> bool:
    return "name" in keys and bool(keys & KG_KEYS)


def _pick(row: dict[str, Any], aliases: tuple[str, ...], as_list: bool) -> Any:
    for key in aliases:
        value = list_of(row.get(key), key) if as_list else text_of(row.get(key), key)
        if value:
            return value
    return [] if as_list else ""


def treat_summary(row: dict[str, Any], treat_way: list[str], drugs: list[str]) -> str:
    """A treatment sentence from the structured fields, for graphs without a ``treat_detail`` text."""
    cycle = first_text(row, ("treat_cycle", "cure_lasttime"))
    prob = first_text(row, ("cure_prob", "cured_prob"))
    parts = [
        f"以{'、'.join(treat_way)}为主" if treat_way else "",
        f"常用药物有{'、'.join(drugs[:4])}（须遵医嘱使用）" if drugs else "",
        f"疗程约{cycle}" if cycle else "",
        f"治愈率约{prob}" if prob else "",
    ]
    text = "，".join(p for p in parts if p)
    return text + "。" if text else ""


def to_disease(row: dict[str, Any], path: str) -> Disease:
    """One KG row (either spelling) → a :class:`Disease`; a row without a name raises ``Unusable``."""
    name = text_of(row.get("name"), "name")
    if not name:
        raise Unusable("kg_without_name")
    fields: dict[str, Any] = {f: _pick(row, a, False) for f, a in TEXT_FIELDS.items()}
    fields.update({f: _pick(row, a, True) for f, a in LIST_FIELDS.items()})
    drugs: list[str] = []
    for key in DRUG_FIELDS:
        drugs += [d for d in list_of(row.get(key), key) if d not in drugs]
    if not fields["treat_detail"]:
        fields["treat_detail"] = treat_summary(row, fields["treat_way"], drugs)
    source = source_name(text_of(row.get("src"), "src"), path, default="xywy_kg")
    return Disease(
        name=name,
        common_drug=drugs,
        source=source,
        id=id_of(row.get("id")) or stable_id(source, name),
        split=split_of(row.get("split")),
        **fields,
    )


def convert(row: dict[str, Any], ctx: Context) -> list[Disease]:
    return [to_disease(row, ctx.path)]


def richness(d: Disease) -> int:
    """How many fields a disease fills; the richest record wins when one name appears twice."""
    return sum(
        1
        for v in (
            d.desc,
            d.cause,
            d.symptoms,
            d.susceptible_people,
            d.checks,
            d.treat_way,
            d.treat_detail,
            d.common_drug,
            d.departments,
            d.prevent,
            d.nursing,
            d.complications,
        )
        if v
    )
