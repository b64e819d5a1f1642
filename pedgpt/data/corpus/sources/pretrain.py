"""Pre-training text JSONL (``text``, or ``content``) → PretrainText.

Types: ``text`` / ``content`` and ``src`` are text (``null`` = absent), ``id`` text or an integer; anything
else is a :class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``).
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, first_text, id_of, source_name, split_of, text_of
from pedgpt.data.schema import PretrainText, stable_id

TEXT_KEYS = ("text", "content")


def detect(keys: set[str]) -> bool:
    return bool(keys & set(TEXT_KEYS))


def convert(row: dict[str, Any], ctx: Context) -> list[PretrainText]:
    text = first_text(row, TEXT_KEYS)
    if not text:
        raise Unusable("empty_text")
    source = source_name(text_of(row.get("src"), "src"), ctx.path)
    rid = id_of(row.get("id")) or stable_id(source, text)
    return [PretrainText(text=text, source=source, id=rid, split=split_of(row.get("split")))]
