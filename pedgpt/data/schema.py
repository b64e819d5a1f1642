"""The project's vocabulary, in one place: task names, record types and their JSONL form.

Every converter, builder, stage and evaluator speaks these types. Later work extends this module (new
fields with defaults, new tasks appended at the end) rather than redefining it elsewhere.

Record types
------------
* :class:`PretrainText` – plain text for continuous pre-training.
* :class:`Instruction`   – a (multi-turn) conversation with a task label, an optional system prompt,
  the upstream ``source`` and a stable ``id``; the loss covers assistant turns only.
* :class:`PreferencePair` – a prompt conversation (history + final user turn), a chosen and a rejected answer.
* :class:`EvalItem`      – a prompt with a reference answer (or multiple-choice options), for evaluation suites.

Conversations (``messages`` / ``prompt``) start with a user turn and alternate user / assistant; an
instruction ends with an assistant turn, a preference or evaluation prompt with a user turn.

Reading (:func:`read_jsonl`, :func:`from_dict`) is strict: every field must have its declared JSON type
(text where text belongs, never a boolean, number, object or ``null`` in a text field; ``NaN`` /
``Infinity`` are not JSON), ``split`` must be one of :data:`SPLITS`, and a bad line raises
:class:`RecordError` ``path:line: …`` naming the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pedgpt.common.errors import DataError

# --- tasks --------------------------------------------------------------------------------------------
#: Task vocabulary. The order is the task-id order used by task routers; append, never reorder.
TASKS: tuple[str, ...] = ("medkqa", "evidiag", "trerecom", "consult", "general")
#: The three pediatric tasks of the paper (MedKQ&A, EviDiag, TreRecom).
PEDIATRIC_TASKS: tuple[str, ...] = ("medkqa", "evidiag", "trerecom")
TASK_TO_ID: dict[str, int] = {t: i for i, t in enumerate(TASKS)}
TASK_TITLES: dict[str, str] = {
    "medkqa": "MedKQ&A (knowledge question answering)",
    "evidiag": "EviDiag (evidence-based diagnosis)",
    "trerecom": "TreRecom (treatment recommendation)",
    "consult": "consultation",
    "general": "general instruction",
}
ROLES: tuple[str, ...] = ("system", "user", "assistant")
SPLITS: tuple[str, ...] = ("train", "dev", "test")


class RecordError(DataError):
    """A record that does not fit the schema. The message names the field (and, from :func:`read_jsonl`, the
    file and line). A :class:`~pedgpt.common.errors.PedgptError`: entry points print it as one line."""


def task_id(task: str) -> int:
    """Map a task name to its id; unknown names raise with the vocabulary listed."""
    try:
        return TASK_TO_ID[task]
    except (KeyError, TypeError):
        raise RecordError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


def json_type(value: Any) -> str:
    """A value's JSON type for messages: ``bool (true)``, ``number (3)``, ``NaN``, ``Infinity``, ``object``,
    ``list``, ``null``, ``text``."""
    if isinstance(value, bool):
        return f"bool ({'true' if value else 'false'})"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (int, float)):
        return f"number ({value})"
    if isinstance(value, (list, tuple)):
        return "list"
    return {dict: "object", type(None): "null", str: "text"}.get(type(value), type(value).__name__)


def stable_id(*parts: Any) -> str:
    """A short, stable id from the given parts (sha1 of their JSON), for records without one upstream."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:16]


# --- record types -------------------------------------------------------------------------------------
@dataclass
class Message:
    role: str
    content: str

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or self.role not in ROLES:
            raise RecordError(f"message role {self.role!r} is not one of {ROLES}")
        if not isinstance(self.content, str):
            raise RecordError(f"message content must be a string, got {json_type(self.content)}")


def _messages(raw: Iterable[Any], field: str = "messages") -> list[Message]:
    if not isinstance(raw, (list, tuple)):
        raise RecordError(f"field {field!r} must be a list of messages, got {json_type(raw)}")
    out = []
    for i, m in enumerate(raw):
        if isinstance(m, Message):
            out.append(m)
            continue
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            got = sorted(m) if isinstance(m, dict) else json_type(m)
            raise RecordError(f"{field}[{i}] must be an object with `role` and `content`, got {got}")
        out.append(Message(role=m["role"], content=m["content"]))
    return out


def _check_turns(messages: list[Message], what: str) -> None:
    """Turns start with a user message and alternate user / assistant."""
    for i, m in enumerate(messages):
        want = ("user", "assistant")[i % 2]
        if m.role != want:
            raise RecordError(f"{what} must alternate user/assistant from a user turn: message {i} is {m.role}")


@dataclass
class PretrainText:
    text: str
    source: str = "unknown"
    id: str = ""
    split: str | None = None
    kind: str = field(default="pretrain", init=False)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = stable_id(self.source, self.text)


@dataclass
class Instruction:
    """A conversation: ``messages`` alternate user/assistant and end with an assistant turn."""

    messages: list[Message]
    task: str = "general"
    system: str | None = None
    source: str = "unknown"
    id: str = ""
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default="instruction", init=False)

    def __post_init__(self) -> None:
        self.messages = _messages(self.messages)
        task_id(self.task)
        if not self.messages or self.messages[-1].role != "assistant":
            raise RecordError("instruction must end with an assistant message")
        if any(m.role == "system" for m in self.messages):
            raise RecordError("put the system prompt in `system`, not in `messages`")
        _check_turns(self.messages, "instruction messages")
        if not self.id:
            self.id = stable_id(self.source, [dataclasses.asdict(m) for m in self.messages])

    @property
    def prompt_messages(self) -> list[Message]:
        return self.messages[:-1]

    @property
    def response(self) -> str:
        return self.messages[-1].content


@dataclass
class PreferencePair:
    """``prompt`` is the conversation up to and including the final user turn."""

    prompt: list[Message]
    chosen: str
    rejected: str
    task: str = "general"
    system: str | None = None
    source: str = "unknown"
    id: str = ""
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default="preference", init=False)

    def __post_init__(self) -> None:
        self.prompt = _messages(self.prompt, "prompt")
        task_id(self.task)
        if not self.prompt or self.prompt[-1].role != "user":
            raise RecordError("preference prompt must end with a user message")
        _check_turns(self.prompt, "preference prompt")
        if not self.id:
            self.id = stable_id(self.source, [dataclasses.asdict(m) for m in self.prompt], self.chosen, self.rejected)


@dataclass
class EvalItem:
    """An evaluation item: ``prompt`` ends with a user turn; ``reference`` may be None (reference-free).

    Multiple-choice items carry ``choices`` and the index ``answer``; multi-turn items carry the
    reference answer of every turn in ``turn_references`` (the model answers each turn).
    """

    prompt: list[Message]
    suite: str
    reference: str | None = None
    task: str = "general"
    system: str | None = None
    source: str = "unknown"
    id: str = ""
    split: str | None = "test"
    department: str | None = None
    subject: str | None = None
    choices: list[str] | None = None
    answer: int | None = None
    turn_references: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default="eval", init=False)

    def __post_init__(self) -> None:
        self.prompt = _messages(self.prompt, "prompt")
        task_id(self.task)
        if not self.prompt or self.prompt[-1].role != "user":
            raise RecordError("evaluation prompt must end with a user message")
        _check_turns(self.prompt, "evaluation prompt")
        if not self.id:
            self.id = stable_id(self.suite, self.source, [dataclasses.asdict(m) for m in self.prompt])


@dataclass
class Disease:
    """One disease of a knowledge graph (field names as in the xywy graph used by ../shared/data).

    The bundled demo table and every KG converter produce this; KG → task instructions reads it.
    """

    name: str
    desc: str = ""
    cause: str = ""
    symptoms: list[str] = field(default_factory=list)
    susceptible_people: str = ""
    checks: list[str] = field(default_factory=list)
    treat_way: list[str] = field(default_factory=list)
    treat_detail: str = ""
    common_drug: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    prevent: str = ""
    nursing: str = ""
    complications: list[str] = field(default_factory=list)
    source: str = "unknown"
    id: str = ""
    split: str | None = None
    kind: str = field(default="disease", init=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise RecordError("disease record needs a non-empty `name`")
        if not self.id:
            self.id = stable_id(self.source, self.name)


RECORD_TYPES: dict[str, type] = {
    "pretrain": PretrainText,
    "instruction": Instruction,
    "preference": PreferencePair,
    "eval": EvalItem,
    "disease": Disease,
}
Record = PretrainText | Instruction | PreferencePair | EvalItem | Disease


# --- JSONL form ---------------------------------------------------------------------------------------
def to_dict(record: Record) -> dict[str, Any]:
    """Plain JSON-able dict with a ``kind`` key; ``None`` fields and empty ``meta`` are left out."""
    d = dataclasses.asdict(record)
    return {k: v for k, v in d.items() if v is not None and not (k == "meta" and not v)}


def _is_text(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: declared field type (as annotated) → (check, what the message says it must be)
_FIELD_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (_is_text, "text"),
    "str | None": (lambda v: v is None or _is_text(v), "text or null"),
    "int | None": (lambda v: v is None or _is_int(v), "an integer or null"),
    "list[str]": (lambda v: isinstance(v, list) and all(map(_is_text, v)), "a list of texts"),
    "list[str] | None": (
        lambda v: v is None or (isinstance(v, list) and all(map(_is_text, v))),
        "a list of texts or null",
    ),
    "list[Message]": (lambda v: isinstance(v, list), "a list of messages"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "an object"),
}


def _check_fields(cls: type, kind: str, d: dict[str, Any]) -> None:
    """Every present field has its declared type; ``split`` is one of :data:`SPLITS` (or null)."""
    for f in dataclasses.fields(cls):
        if f.name not in d or not f.init:
            continue
        check, want = _FIELD_TYPES[str(f.type)]
        if not check(d[f.name]):
            raise RecordError(f"field {f.name!r} of a {kind} record must be {want}, got {json_type(d[f.name])}")
    if d.get("split") is not None and d["split"] not in SPLITS:
        raise RecordError(f"field 'split' must be one of {', '.join(SPLITS)} or null, got {d['split']!r}")


def from_dict(d: dict[str, Any], kind: str | None = None) -> Record:
    """Inverse of :func:`to_dict`. ``kind`` overrides/supplies the record type. Strict: every field must
    have its declared type (see the module doc); violations raise :class:`RecordError` naming the field."""
    if not isinstance(d, dict):
        raise RecordError(f"a record must be a JSON object, got {json_type(d)}")
    d = dict(d)
    kind = kind or d.pop("kind", None)
    d.pop("kind", None)
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        raise RecordError(f"unknown record kind {kind!r}; known: {', '.join(RECORD_TYPES)}")
    cls = RECORD_TYPES[kind]
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(d) - names
    if unknown:
        raise RecordError(f"unknown field(s) {sorted(unknown)} for a {kind} record")
    _check_fields(cls, kind, d)
    try:
        return cls(**d)
    except TypeError as e:  # missing required field
        raise RecordError(f"{kind} record: {e}") from None


def dumps(record: Record) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False, sort_keys=True)


def write_jsonl(path: str, records: Iterable[Record]) -> int:
    """Write records one per line (sorted keys, UTF-8) and return the count. Deterministic bytes."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
    return n


def _no_constant(name: str) -> Any:
    raise RecordError(f"{name} is not a JSON value (non-finite numbers are not allowed)")


def _lone_surrogate(obj: Any, where: str) -> str | None:
    """The path of the first string in ``obj`` holding a lone surrogate (text that is not valid Unicode)."""
    if isinstance(obj, str):
        return where if any("\ud800" <= ch <= "\udfff" for ch in obj) else None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = _lone_surrogate(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found:
            return found
    return None


def loads_record(line: str, kind: str | None = None) -> Record:
    """One JSONL line → a record (strict; ``NaN`` / ``Infinity``, too-deep nesting and text that is not
    valid Unicode — a lone surrogate escape such as ``"\\ud800"`` — rejected)."""
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise RecordError("JSON nested too deeply") from None
    if "\\u" in line:  # only escapes can produce a lone surrogate
        bad = _lone_surrogate(obj, "record")
        if bad:
            raise RecordError(f"{bad.removeprefix('record.')} holds invalid Unicode (a lone surrogate)")
    return from_dict(obj, kind)


def read_jsonl(path: str, kind: str | None = None) -> Iterator[Record]:
    """Read records; a malformed line raises ``RecordError`` ``path:line: reason`` naming the field.

    A UTF-8 byte-order mark at the start of the file is dropped."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RecordError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                yield loads_record(line, kind)
            except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSONDecodeError, RecordError
                raise RecordError(f"{path}:{lineno}: {e}") from None
