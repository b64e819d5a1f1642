"""Pre-training text JSONL (``text``, or ``content``) → PretrainText."""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, source_name, text_of
from pedgpt.data.schema import PretrainText, stable_id

TEXT_KEYS = ("text", "content")


def detect(keys: set[str]) -> bool:
    return bool(keys & set(TEXT_KEYS))


def convert(row: dict[str, Any], ctx: Context) -> list[PretrainText]:
    text = next((text_of(row[k]) for k in TEXT_KEYS if text_of(row.get(k))), "")
    if not text:
        raise Unusable("empty_text")
    source = source_name(row.get("src"), ctx.path)
    rid = text_of(row.get("id")) or stable_id(source, text)
    return [PretrainText(text=text, source=source, id=rid, split=row.get("split") or None)]
