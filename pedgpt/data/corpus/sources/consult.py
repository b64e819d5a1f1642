"""Consultation question/answer records, single- or multi-turn (Huatuo-26M, CMtMedQA, ChatMed, webMedQA,
MedDialog, BianQue, GenMedGPT, bentsao, ...).

Fields: ``question`` (aliases ``query``, ``instruct``, ``questions``), ``answer`` (aliases ``response``,
``output``, ``answers``, ``reference``), optional ``history`` (``[[user, assistant], ...]`` or a list of
``{role, content}``), ``src`` (→ source name), ``split``, ``department``. BianQue's single-string
dialogues (``病人：…\\n医生：…``) are unrolled into turns. A question with no answer becomes a
reference-free evaluation item when its source has a suite in ``reference_free_suites``; otherwise it is
skipped as ``empty_answer``.

Types: question, answer, department and ``src`` are text (``null`` = absent); ``id`` text or an integer;
``history`` a list of ``[user, assistant]`` text pairs or of ``{role, content}`` objects whose role is one
of :data:`USER_ROLES` / :data:`ASSISTANT_ROLES` (``from`` / ``value`` spellings too). Anything else is a
:class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``, ``bad_role:history.role``). A
history that does not alternate user/assistant turns is skipped as ``bad_turn_order``.
"""

from __future__ import annotations

import re
from typing import Any

from pedgpt.data.corpus.sources.base import (
    Context,
    Unusable,
    bad_type,
    first_text,
    id_of,
    role_of,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.schema import EvalItem, Instruction, Message, stable_id

QUESTION_KEYS = ("question", "query", "instruct", "questions")
ANSWER_KEYS = ("answer", "response", "output", "answers", "reference")
USER_ROLES = {"user", "human", "patient", "病人", "患者"}
ASSISTANT_ROLES = {"assistant", "gpt", "doctor", "医生", "bot"}
_SPEAKER = re.compile(r"(病人|患者|医生)[：:]")


def detect(keys: set[str]) -> bool:
    return bool(keys & set(QUESTION_KEYS)) and (bool(keys & set(ANSWER_KEYS)) or "history" in keys)


def _turn(turn: dict[str, Any], field: str) -> Message:
    role_key = "role" if "role" in turn else "from"
    role = role_of(turn.get(role_key), f"{field}.{role_key}", USER_ROLES | ASSISTANT_ROLES)
    content_key = "content" if "content" in turn else "value"
    return Message(
        "user" if role in USER_ROLES else "assistant", text_of(turn.get(content_key), f"{field}.{content_key}")
    )


def _history(raw: Any, field: str = "history") -> list[Message]:
    """Earlier turns: ``[[user, assistant], ...]`` or ``[{role, content}, ...]``; they must alternate
    user/assistant from a user turn and end on an assistant turn (else ``bad_turn_order``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_type(field, "a list of turns", raw)
    msgs: list[Message] = []
    for turn in raw:
        if isinstance(turn, dict):
            msgs.append(_turn(turn, field))
        elif isinstance(turn, list) and len(turn) == 2:
            msgs += [
                Message("user", text_of(turn[0], f"{field}[]")),
                Message("assistant", text_of(turn[1], f"{field}[]")),
            ]
        else:
            raise bad_type(f"{field}[]", "a [user, assistant] pair or a {role, content} object", turn)
    if not alternates(msgs) or len(msgs) % 2:
        raise Unusable("bad_turn_order")
    return msgs


def alternates(msgs: list[Message]) -> bool:
    """Whether ``msgs`` alternate user / assistant, starting with a user turn."""
    return all(m.role == ("user", "assistant")[i % 2] for i, m in enumerate(msgs))


def unroll_speakers(question: str) -> tuple[list[Message], str]:
    """``病人：a\\n医生：b\\n病人：c\\n医生：`` → (history [a, b], final question c)."""
    text = question.replace("\\n", "\n")
    parts = _SPEAKER.split(text)
    if len(parts) < 3:
        return [], text
    turns = [
        ("user" if who in ("病人", "患者") else "assistant", body.strip())
        for who, body in zip(parts[1::2], parts[2::2])
    ]
    while turns and turns[-1][0] == "assistant" and not turns[-1][1]:
        turns.pop()
    if not turns or turns[-1][0] != "user":
        return [], text
    merged: list[Message] = []
    for role, body in turns:
        if merged and merged[-1].role == role:
            merged[-1] = Message(role, merged[-1].content + "\n" + body)
        else:
            merged.append(Message(role, body))
    return merged[:-1], merged[-1].content


def convert(row: dict[str, Any], ctx: Context) -> list[Instruction | EvalItem]:
    source = source_name(text_of(row.get("src"), "src"), ctx.path)
    question, answer = first_text(row, QUESTION_KEYS), first_text(row, ANSWER_KEYS)
    split = split_of(row.get("split"))
    history = _history(row.get("history"))
    if _SPEAKER.match(question):
        extra, question = unroll_speakers(question)
        history += extra
    if not question:
        raise Unusable("empty_question")
    if any(not m.content for m in history):
        raise Unusable("empty_history_turn")
    first_user = history[0].content if history else question
    department = text_of(row.get("sub_department"), "sub_department") or text_of(row.get("department"), "department")
    department = department or None
    meta: dict[str, Any] = {"dialogue": stable_id(source, first_user)}
    if department:
        meta["department"] = department
    rid = id_of(row.get("id")) or stable_id(source, [m.content for m in history], question, answer)
    prompt = history + [Message("user", question)]
    if not alternates(prompt):
        raise Unusable("bad_turn_order")
    if not answer:
        suite = (ctx.options.get("reference_free_suites") or {}).get(source)
        if not suite:
            raise Unusable("empty_answer")
        return [
            EvalItem(
                prompt=prompt,
                suite=suite,
                reference=None,
                task="consult",
                source=source,
                id=rid,
                split="test",
                department=department,
                meta=meta,
            )
        ]
    task = (ctx.options.get("tasks_by_source") or {}).get(source, "consult")
    return [
        Instruction(
            messages=prompt + [Message("assistant", answer)],
            task=task,
            source=source,
            id=rid,
            split=split,
            meta=meta,
        )
    ]
