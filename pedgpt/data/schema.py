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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

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


class RecordError(ValueError):
    """A record that does not fit the schema. The message names the field."""


def task_id(task: str) -> int:
    """Map a task name to its id; unknown names raise with the vocabulary listed."""
    try:
        return TASK_TO_ID[task]
    except KeyError:
        raise RecordError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


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
        if self.role not in ROLES:
            raise RecordError(f"message role {self.role!r} is not one of {ROLES}")
        if not isinstance(self.content, str):
            raise RecordError(f"message content must be a string, got {type(self.content).__name__}")


def _messages(raw: Iterable[Any]) -> list[Message]:
    out = []
    for m in raw:
        out.append(m if isinstance(m, Message) else Message(role=m["role"], content=m["content"]))
    return out


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
        self.prompt = _messages(self.prompt)
        task_id(self.task)
        if not self.prompt or self.prompt[-1].role != "user":
            raise RecordError("preference prompt must end with a user message")
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
        self.prompt = _messages(self.prompt)
        task_id(self.task)
        if not self.prompt or self.prompt[-1].role != "user":
            raise RecordError("evaluation prompt must end with a user message")
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


def from_dict(d: dict[str, Any], kind: str | None = None) -> Record:
    """Inverse of :func:`to_dict`. ``kind`` overrides/supplies the record type."""
    d = dict(d)
    kind = kind or d.pop("kind", None)
    d.pop("kind", None)
    if kind not in RECORD_TYPES:
        raise RecordError(f"unknown record kind {kind!r}; known: {', '.join(RECORD_TYPES)}")
    cls = RECORD_TYPES[kind]
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(d) - names
    if unknown:
        raise RecordError(f"unknown field(s) {sorted(unknown)} for a {kind} record")
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


def read_jsonl(path: str, kind: str | None = None) -> Iterator[Record]:
    """Read records; a malformed line raises ``RecordError`` naming the file and line number."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RecordError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                yield from_dict(json.loads(line), kind)
            except (json.JSONDecodeError, RecordError, KeyError, TypeError) as e:
                raise RecordError(f"{path}:{lineno}: {e}") from None
