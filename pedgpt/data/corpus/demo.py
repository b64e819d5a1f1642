"""The bundled demo data: the team-written knowledge table and the corpus generated from it.

``build_demo_corpus`` turns every disease of ``pedgpt/resources/demo_kg.jsonl`` into CPT paragraphs, SFT
instructions (MedKQ&A, EviDiag, TreRecom) and preference pairs, adds the general instructions, and splits
by group — the disease for KG records, the record id for general ones — so no disease straddles train and dev.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pedgpt.data.corpus import kg_tasks
from pedgpt.data.schema import Disease, RecordError, from_dict

DEMO_KG = "resources/demo_kg.jsonl"
DEV_FRACTION = 0.2


def load_demo_kg() -> list[Disease]:
    """The bundled knowledge table, in file order."""
    path = resources.files("pedgpt").joinpath(DEMO_KG)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(from_dict(json.loads(line), "disease"))
            except (json.JSONDecodeError, RecordError) as e:
                raise RecordError(f"pedgpt/{DEMO_KG}:{lineno}: {e}") from None
    return out


def split_of(group: str, dev_fraction: float = DEV_FRACTION) -> str:
    """ "dev" for about ``dev_fraction`` of groups, else "train"; depends on the group key only."""
    return "dev" if kg_tasks.hash_int("pedgpt-split", group) / 2**64 < dev_fraction else "train"


def build_demo_corpus(seed: int = 0, dev_fraction: float = DEV_FRACTION) -> dict[str, list[Any]]:
    """``{"cpt": [PretrainText], "sft": [Instruction], "preference": [PreferencePair]}``, each record with
    ``split`` set. The split does not depend on ``seed``; the templates drawn do."""
    diseases = load_demo_kg()
    corpus: dict[str, list[Any]] = {"cpt": [], "sft": [], "preference": []}
    for d in diseases:
        split = split_of(d.name, dev_fraction)
        records = {
            "cpt": kg_tasks.cpt_texts(d),
            "sft": kg_tasks.medkqa_items(d, seed)
            + kg_tasks.evidiag_items(d, diseases, seed)
            + kg_tasks.trerecom_items(d, seed),
            "preference": kg_tasks.preference_pairs(d, diseases, seed),
        }
        for kind, recs in records.items():
            for r in recs:
                r.split = split
            corpus[kind].extend(recs)
    for r in kg_tasks.general_instructions():
        r.split = split_of(r.id, dev_fraction)
        corpus["sft"].append(r)
    return corpus
