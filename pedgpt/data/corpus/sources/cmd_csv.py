"""Toyhom Chinese-medical-dialogue-data (CMD): department CSVs and the CMD-derived JSONL rows.

Upstream CSVs have the header ``department,title,ask,answer`` and are GB18030-encoded; UTF-8 copies work
too (the encoding is detected, or forced with ``encoding=``). JSONL copies carry ``title``, ``question``
(title + ask) and ``answer``. Every row becomes a single-turn ``consult`` instruction with source ``cmd``.

Types (JSONL rows; CSV cells are always text): title, ask, question, answer, department and ``src`` are
text (``null`` = absent), ``id`` text or an integer; anything else is a
:class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pedgpt.data.corpus.skips import count_skip
from pedgpt.data.corpus.sources.base import Context, SourceError, Unusable, id_of, source_name, split_of, text_of
from pedgpt.data.schema import Instruction, Message, stable_id

CSV_COLUMNS = ("department", "title", "ask", "answer")
DETECT_ORDER = ("utf-8-sig", "gb18030")


def detect(keys: set[str]) -> bool:
    return {"title", "ask", "answer"} <= keys or {"title", "question", "answer", "department"} <= keys


def detect_encoding(data: bytes) -> str:
    """``utf-8-sig`` if the bytes decode as UTF-8, else ``gb18030`` (CMD's original encoding)."""
    best, reach = DETECT_ORDER[0], -1
    for enc in DETECT_ORDER:
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError as e:
            if e.start > reach:
                best, reach = enc, e.start
    return best


def _lines(data: bytes, path: str, encoding: str, skip_invalid: bool, skipped: Counter) -> Iterator[str]:
    for lineno, raw in enumerate(data.splitlines(keepends=True), 1):
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as e:
            if not skip_invalid:
                raise SourceError(
                    f"{path}:{lineno}: undecodable bytes for {encoding} ({e.reason} at byte {e.start})"
                ) from None
            count_skip(skipped, "undecodable", f"{path}:{lineno}", f"{e.reason} at byte {e.start}")
            yield "\n"  # keep physical line numbers aligned


def read_csv_rows(
    path: str, encoding: str | None = None, skip_invalid: bool = False, skipped: Counter | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, {column: value})`` for each data row of a CSV file with a header row.

    ``encoding`` None detects UTF-8 vs GB18030. A row whose column count differs from the header's
    raises :class:`SourceError` (``path:line: ...``) or, with ``skip_invalid``, is counted and skipped.
    """
    skipped = skipped if skipped is not None else Counter()
    with open(path, "rb") as f:
        data = f.read()
    enc = encoding or detect_encoding(data)
    if enc.replace("_", "-").lower() in ("utf-8", "utf8") and data.startswith(b"\xef\xbb\xbf"):
        enc = "utf-8-sig"
    reader = csv.reader(_lines(data, path, enc, skip_invalid, skipped))
    header: list[str] | None = None
    for row in reader:
        if not row or not any(c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip().lstrip("\ufeff") for c in row]
            continue
        if len(row) != len(header):
            if not skip_invalid:
                raise SourceError(
                    f"{path}:{reader.line_num}: CSV row has {len(row)} columns, "
                    f"expected {len(header)} ({','.join(header)})"
                )
            count_skip(
                skipped, "bad_csv_row", f"{path}:{reader.line_num}", f"{len(row)} columns, expected {len(header)}"
            )
            continue
        yield reader.line_num, dict(zip(header, row))


def convert(row: dict[str, Any], ctx: Context) -> list[Instruction]:
    """One CMD row (CSV or JSONL form) → one ``consult`` instruction with source ``cmd``."""
    title = text_of(row.get("title"), "title")
    ask = text_of(row.get("ask"), "ask")
    question = text_of(row.get("question"), "question")
    if not question:
        question = ask if ask.startswith(title) else "\n".join(p for p in (title, ask) if p)
    answer = text_of(row.get("answer"), "answer")
    if not question:
        raise Unusable("empty_question")
    if not answer:
        raise Unusable("empty_answer")
    src = text_of(row.get("src"), "src")
    source = source_name(src, ctx.path) if src else "cmd"
    department = text_of(row.get("sub_department"), "sub_department") or text_of(row.get("department"), "department")
    meta = {"dialogue": stable_id("cmd", question)}
    if department:
        meta["department"] = department
    rid = id_of(row.get("id")) or stable_id("cmd", department, question, answer)
    return [
        Instruction(
            messages=[Message("user", question), Message("assistant", answer)],
            task="consult",
            source=source,
            id=rid,
            split=split_of(row.get("split")),
            meta=meta,
        )
    ]
