"""What every converter shares: the error types, the context of a row, upstream source names, reading JSON(L)
rows with file:line errors, and small field helpers.

Every converter is a function ``convert(row, ctx) -> list[Record]`` over
one upstream record (a dict); it raises :class:`Unusable` for a well-formed record that cannot serve
(counted by reason, never silently dropped). Reading errors become :class:`SourceError` with a one-line
message ``path:line: what``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class SourceError(ValueError):
    """Bad input: the message is one line, ``path:line: reason``."""


class Unusable(Exception):
    """A well-formed record that cannot be used; ``reason`` is the counter key in ``stats.skipped``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Context:
    """What a converter knows besides the row: where it came from and the converter options."""

    path: str
    line: int = 0
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]

    def where(self) -> str:
        return f"{self.path}:{self.line}"


# --- upstream dataset names --------------------------------------------------------------------------
#: (pattern searched case-insensitively in ``src`` or the file name, source name); first match wins.
SOURCE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"huatuo26m", "huatuo26m"),
    (r"cmtmedqa", "cmtmedqa"),
    (r"chatmed", "chatmed"),
    (r"webmedqa_pulse|pulse-eval:data/webmedqa|^webmedqa", "webmedqa"),
    (r"med-?dialog", "meddialog"),
    (r"bianque|cmedialog", "bianque"),
    (r"genmedgpt", "genmedgpt"),
    (r"huatuo-llama-med-chinese|llama_data|bentsao", "bentsao"),
    (r"chinese-medical-dialogue-data|toyhom|^cmd", "cmd"),
    (r"mz-?10", "mz10"),
    (r"imcs", "imcs21"),
    (r"dxy", "dxy"),
    (r"medicalkgqa|qasystemonmedicalkg|medical_\d+\.json|^kg_|xywy", "xywy_kg"),
    (r"disc-medllm|disc_gpt4", "disc_med"),
    (r"pulse-eval:eval/elo|pulse_elo", "pulse_elo"),
    (r"medicalgpt:data/reward/test|medical_reward", "medicalgpt_reward"),
    (r"dpo_zh_500|dpo_zh_medicalgpt", "medicalgpt_dpo"),
    (r"dpo_zh_demo|dpo_zh_llamafactory", "llamafactory_dpo"),
    (r"cmeee", "cmeee"),
    (r"medicalgpt:data/(pretrain|rag)|medicalgpt_medical_text", "medicalgpt_text"),
    (r"alpaca_zh", "alpaca_zh"),
    (r"identity", "identity"),
    (r"sharegpt", "sharegpt_zh"),
    (r"medical_sft", "medicalgpt_sft"),
    (r"cmmlu", "cmmlu"),
)


def source_name(src: str | None, path: str, default: str | None = None) -> str:
    """The upstream dataset name: matched in ``src``, else in the file name and its folder's name, else
    ``default``, else the file stem."""
    where = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
    for text in (src or "", os.path.basename(path), where):
        for pattern, name in SOURCE_PATTERNS:
            if text and re.search(pattern, text, flags=re.IGNORECASE):
                return name
    return default or os.path.splitext(os.path.basename(path))[0].lower()


# --- reading -----------------------------------------------------------------------------------------
def _decode(raw: bytes, path: str, line: int, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}:{line}: undecodable bytes for {encoding} ({e.reason} at byte {e.start})") from None


def read_json_rows(
    path: str, skip_invalid: bool = False, skipped: Counter | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` from a JSONL file, or from a JSON array file (line = item number).

    A malformed line raises :class:`SourceError` naming file and line, or with ``skip_invalid`` is
    skipped and counted in ``skipped`` under ``malformed_json`` / ``undecodable``.
    """
    skipped = skipped if skipped is not None else Counter()
    with open(path, "rb") as f:
        data = f.read()
    head = data.lstrip()[:1]
    if head == b"[":
        try:
            items = json.loads(_decode(data, path, 1, encoding))
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
        for i, item in enumerate(items, 1):
            if isinstance(item, dict):
                yield i, item
            elif skip_invalid:
                skipped["not_an_object"] += 1
            else:
                raise SourceError(f"{path}:{i}: item is not a JSON object")
        return
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(_decode(raw, path, lineno, encoding))
        except SourceError:
            if not skip_invalid:
                raise
            skipped["undecodable"] += 1
            continue
        except json.JSONDecodeError as e:
            if not skip_invalid:
                raise SourceError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
            skipped["malformed_json"] += 1
            continue
        if not isinstance(obj, dict):
            if not skip_invalid:
                raise SourceError(f"{path}:{lineno}: line is not a JSON object")
            skipped["not_an_object"] += 1
            continue
        yield lineno, obj


def rng_for(seed: int, source: str, key: str) -> random.Random:
    """A RNG seeded from hash(seed, source, record key): one record's choices never depend on others."""
    digest = hashlib.sha256(f"{seed}\x1f{source}\x1f{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def text_of(value: Any) -> str:
    """A string field: None → "", lists joined with 、, anything else str()."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "、".join(text_of(v) for v in value if text_of(v))
    return str(value).strip()


def list_of(value: Any) -> list[str]:
    """A list field: None → [], a string split on common separators, a list of stripped strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in re.split(r"[、,，;；\s]+", value) if p.strip()]
    return [text_of(v) for v in value if text_of(v)]
