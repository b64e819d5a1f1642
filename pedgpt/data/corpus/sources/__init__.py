"""Converter registry: which converter handles which public data file.

A file's format is chosen by a config mapping (``formats: {glob: name}``) or, failing that, detected from
the keys of its first record. Every converter is a function ``convert(row, ctx) -> list[Record]`` over one
upstream record (a dict); the shared types and helpers are in :mod:`pedgpt.data.corpus.sources.base`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from pedgpt.data.corpus.sources import (
    benchmark,
    cmd_csv,
    consult,
    instructions,
    preference,
    pretrain,
    symptom_dx,
    xywy_kg,
)
from pedgpt.data.corpus.sources.base import (
    BadValue,
    Context,
    SourceError,
    Unusable,
    id_of,
    list_of,
    read_json_rows,
    rng_for,
    role_of,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.schema import Record


# --- formats -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Format:
    name: str
    detect: Callable[[set[str]], bool]
    convert: Callable[[dict[str, Any], Context], list[Record]]


def _formats() -> dict[str, Format]:
    # Order matters: the most specific key sets first.
    fs = [
        Format("cmd_csv", cmd_csv.detect, cmd_csv.convert),
        Format("benchmark", benchmark.detect, benchmark.convert),
        Format("preference", preference.detect, preference.convert),
        Format("symptom_dx", symptom_dx.detect, symptom_dx.convert),
        Format("xywy_kg", xywy_kg.detect, xywy_kg.convert),
        Format("instructions", instructions.detect, instructions.convert),
        Format("consult", consult.detect, consult.convert),
        Format("pretrain", pretrain.detect, pretrain.convert),
    ]
    return {f.name: f for f in fs}


FORMATS: dict[str, Format] = {}


def get_format(name: str) -> Format:
    if not FORMATS:
        FORMATS.update(_formats())
    if name not in FORMATS:
        raise SourceError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def detect_format(first: dict[str, Any], path: str, mapping: dict[str, str] | None = None) -> Format:
    """The format for ``path``: a ``mapping`` glob (matched on the path relative name) wins, else keys."""
    for pattern, name in (mapping or {}).items():
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
            return get_format(name)
    get_format("consult")
    keys = set(first)
    for fmt in FORMATS.values():
        if fmt.detect(keys):
            return fmt
    raise SourceError(
        f"{path}:1: unrecognised record format (keys {sorted(keys)}); "
        f"map the file to one of {sorted(FORMATS)} under `formats`"
    )


def read_rows(
    path: str, options: dict[str, Any], skip_invalid: bool, skipped: MutableMapping[str, int]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of any supported file: ``.csv`` through :mod:`cmd_csv`, ``.json``/``.jsonl`` as JSON."""
    encodings = options.get("encodings") or {}
    encoding = next((enc for pat, enc in encodings.items() if fnmatch.fnmatch(os.path.basename(path), pat)), None)
    if path.endswith(".csv"):
        return cmd_csv.read_csv_rows(path, encoding=encoding, skip_invalid=skip_invalid, skipped=skipped)
    return read_json_rows(path, skip_invalid=skip_invalid, skipped=skipped, encoding=encoding or "utf-8")


__all__ = [
    "BadValue",
    "Context",
    "Format",
    "SourceError",
    "Unusable",
    "detect_format",
    "get_format",
    "id_of",
    "list_of",
    "read_json_rows",
    "read_rows",
    "rng_for",
    "role_of",
    "source_name",
    "split_of",
    "text_of",
]
