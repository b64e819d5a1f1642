"""What every converter shares: the error types, the context of a row, upstream source names, reading JSON(L)
rows with file:line errors, and the typed field helpers.

Every converter is a function ``convert(row, ctx) -> list[Record]`` over
one upstream record (a dict); it raises :class:`Unusable` for a well-formed record that cannot serve
(counted by reason, never silently dropped). Reading errors become :class:`SourceError` with a one-line
message ``path:line: what``.

Typed fields: a converter reads every field through :func:`text_of`, :func:`list_of`, :func:`id_of`,
:func:`split_of` or :func:`role_of`, which accept only the JSON types the format allows (text where text
belongs; ``null`` means absent) and raise :class:`BadValue` for anything else — a boolean, a number, an
object, ``NaN`` / ``Infinity``, a role outside the format's vocabulary. The builder turns a ``BadValue`` into
``path:line: field 'answer' must be text, got bool (true)`` or, with ``skip_invalid``, a skip counted as
``bad_type:<field>`` / ``bad_role:<field>``. Nothing is ever ``str()``-ed into training text.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Collection, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pedgpt.data.corpus.skips import count_skip
from pedgpt.data.schema import json_type


class SourceError(ValueError):
    """Bad input: the message is one line, ``path:line: reason``."""


class Unusable(Exception):
    """A well-formed record that cannot be used; ``reason`` is the counter key in ``stats.skipped``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BadValue(Unusable):
    """A field holding a value its format does not allow (a type, a role): an error naming the field, or with
    ``skip_invalid`` a skip counted under ``reason`` (``bad_type:<field>`` / ``bad_role:<field>``)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.detail = detail


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
BOM = b"\xef\xbb\xbf"


def _decode(raw: bytes, path: str, line: int, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}:{line}: undecodable bytes for {encoding} ({e.reason} at byte {e.start})") from None


def _loads(text: str) -> Any:
    """``json.loads`` whose too-deep nesting is a ``JSONDecodeError``-like ``ValueError`` (never a
    ``RecursionError`` escaping the reader)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json_rows(
    path: str, skip_invalid: bool = False, skipped: MutableMapping[str, int] | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` from a JSONL file, or from a JSON array file (line = item number).

    A UTF-8 byte-order mark at the start of the file is dropped. A malformed line (bad JSON, nesting too
    deep for the parser, undecodable bytes, not an object) raises :class:`SourceError` naming file and line,
    or with ``skip_invalid`` is skipped and counted in ``skipped`` under ``malformed_json`` /
    ``undecodable`` / ``not_an_object``.
    """
    skipped = skipped if skipped is not None else Counter()
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(BOM) and encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig"):
        data = data[len(BOM) :]
    head = data.lstrip()[:1]
    if head == b"[":
        try:
            items = _loads(_decode(data, path, 1, encoding))
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
        except ValueError as e:
            raise SourceError(f"{path}:1: malformed JSON ({e})") from None
        for i, item in enumerate(items, 1):
            if isinstance(item, dict):
                yield i, item
            elif skip_invalid:
                count_skip(skipped, "not_an_object", f"{path}:{i}")
            else:
                raise SourceError(f"{path}:{i}: item is not a JSON object")
        return
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = _loads(_decode(raw, path, lineno, encoding))
        except SourceError as e:
            if not skip_invalid:
                raise
            count_skip(skipped, "undecodable", where, str(e).split(": ", 1)[-1])
            continue
        except json.JSONDecodeError as e:
            if not skip_invalid:
                raise SourceError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            count_skip(skipped, "malformed_json", where, f"{e.msg} at column {e.colno}")
            continue
        except ValueError as e:
            if not skip_invalid:
                raise SourceError(f"{where}: malformed JSON ({e})") from None
            count_skip(skipped, "malformed_json", where, str(e))
            continue
        if not isinstance(obj, dict):
            if not skip_invalid:
                raise SourceError(f"{where}: line is not a JSON object")
            count_skip(skipped, "not_an_object", where)
            continue
        yield lineno, obj


def rng_for(seed: int, source: str, key: str) -> random.Random:
    """A RNG seeded from hash(seed, source, record key): one record's choices never depend on others."""
    digest = hashlib.sha256(f"{seed}\x1f{source}\x1f{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# --- typed fields ------------------------------------------------------------------------------------
def describe(value: Any) -> str:
    """A value's JSON type for an error message: ``bool (true)``, ``number (3)``, ``NaN``, ``object`` …"""
    return json_type(value)


def bad_type(field: str, want: str, value: Any) -> BadValue:
    return BadValue(f"bad_type:{field}", f"field {field!r} must be {want}, got {describe(value)}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def checked_text(value: str, field: str) -> str:
    """``value`` stripped; a lone surrogate (``"\\ud800"`` in the JSON, not UTF-8 encodable) raises
    :class:`BadValue` ``bad_text:<field>``."""
    m = _SURROGATE.search(value)
    if m:
        raise BadValue(f"bad_text:{field}", f"field {field!r} holds invalid Unicode (lone surrogate U+{ord(m[0]):04X})")
    return value.strip()


def text_of(value: Any, field: str, lists: bool = False, sep: str = "、") -> str:
    """A text field: a string (stripped); ``null`` → ""; with ``lists`` a list of strings joined with
    ``sep``. Anything else, or text that is not valid Unicode, raises :class:`BadValue` naming ``field``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return checked_text(value, field)
    if lists and isinstance(value, list):
        return sep.join(list_of(value, field))
    raise bad_type(field, "text or a list of texts" if lists else "text", value)


def first_text(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The first non-empty of the alias fields ``keys`` of ``row`` (each must be text or null)."""
    for k in keys:
        text = text_of(row.get(k), k)
        if text:
            return text
    return ""


def list_of(value: Any, field: str) -> list[str]:
    """A list field: ``null`` → [], a string split on common separators, a list of strings (stripped, empty
    ones dropped). A non-string item or any other type raises :class:`BadValue` naming ``field``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in re.split(r"[、,，;；\s]+", checked_text(value, field)) if p.strip()]
    if not isinstance(value, list):
        raise bad_type(field, "a list of texts or a text", value)
    out = []
    for item in value:
        if not isinstance(item, str):
            raise bad_type(f"{field}[]", "text", item)
        item = checked_text(item, f"{field}[]")
        if item:
            out.append(item)
    return out


def id_of(value: Any, field: str = "id") -> str:
    """An upstream id: a string or an integer (never a boolean); ``null`` → ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return checked_text(value, field)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise bad_type(field, "text or an integer", value)


def split_of(value: Any, field: str = "split") -> str | None:
    """An upstream split name (resolved later by :mod:`pedgpt.data.corpus.splits`); ``null`` / "" → None."""
    return text_of(value, field) or None


def role_of(value: Any, field: str, vocabulary: Collection[str]) -> str:
    """A speaker role, lower-cased; it must be text and one of ``vocabulary``, else :class:`BadValue`
    (``bad_type:<field>`` / ``bad_role:<field>``)."""
    if not isinstance(value, str):
        raise bad_type(field, "text", value)
    role = value.strip().lower()
    if role not in vocabulary:
        raise BadValue(
            f"bad_role:{field}", f"field {field!r}: role {value!r} is not one of {', '.join(sorted(vocabulary))}"
        )
    return role
