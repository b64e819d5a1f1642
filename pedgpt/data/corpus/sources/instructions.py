"""Instruction files: Alpaca (``instruction``, ``input``, ``output``, optional ``system``/``history``) and
ShareGPT (``conversations: [{from, value}]``, or ``messages: [{role, content}]``) → Instruction.

Placeholders ``{{name}}`` / ``{{author}}`` (LLaMA-Factory's identity file) are filled from the ``identity``
option; a record that still holds a placeholder with no value configured is skipped as
``unfilled_placeholder``. A ShareGPT conversation ending on a user turn loses that turn; one whose roles do
not alternate is skipped as ``bad_turn_order``. The task is ``general`` unless ``tasks_by_source`` says.
"""

from __future__ import annotations

import re
from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, source_name, text_of
from pedgpt.data.corpus.sources.consult import ASSISTANT_ROLES, USER_ROLES, _history
from pedgpt.data.schema import Instruction, Message, stable_id

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def detect(keys: set[str]) -> bool:
    return {"instruction", "output"} <= keys or "conversations" in keys or "messages" in keys


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    """Replace ``{{key}}`` with ``values[key]``; an unknown key raises ``Unusable``."""

    def sub(m: re.Match) -> str:
        if not values.get(m.group(1)):
            raise Unusable("unfilled_placeholder")
        return str(values[m.group(1)])

    return PLACEHOLDER.sub(sub, text)


def _sharegpt(turns: list[dict[str, Any]]) -> tuple[str | None, list[Message]]:
    system, msgs = None, []
    for turn in turns:
        role = str(turn.get("from") or turn.get("role") or "").lower()
        content = text_of(turn.get("value") if "value" in turn else turn.get("content"))
        if role == "system":
            system = content or None
            continue
        if role not in USER_ROLES | ASSISTANT_ROLES:
            raise Unusable("unknown_role")
        msgs.append(Message("user" if role in USER_ROLES else "assistant", content))
    while msgs and msgs[-1].role == "user":
        msgs.pop()
    return system, msgs


def convert(row: dict[str, Any], ctx: Context) -> list[Instruction]:
    if "conversations" in row or "messages" in row:
        system, msgs = _sharegpt(row.get("conversations") or row.get("messages") or [])
    else:
        user = "\n".join(p for p in (text_of(row.get("instruction")), text_of(row.get("input"))) if p)
        system = text_of(row.get("system")) or None
        msgs = _history(row.get("history")) + [Message("user", user), Message("assistant", text_of(row.get("output")))]
    if not msgs:
        raise Unusable("empty_conversation")
    if any(m.role != ("user", "assistant")[i % 2] for i, m in enumerate(msgs)):
        raise Unusable("bad_turn_order")
    if not msgs[-1].content:
        raise Unusable("empty_answer")
    if any(not m.content for m in msgs):
        raise Unusable("empty_turn")
    values = {k: str(v) for k, v in (ctx.options.get("identity") or {}).items()}
    msgs = [Message(m.role, fill_placeholders(m.content, values)) for m in msgs]
    source = source_name(row.get("src"), ctx.path)
    task = (ctx.options.get("tasks_by_source") or {}).get(source, "general")
    rid = text_of(row.get("id")) or stable_id(source, [m.content for m in msgs])
    meta = {"dialogue": stable_id(source, msgs[0].content)}
    return [
        Instruction(
            messages=msgs, task=task, system=system, source=source, id=rid, split=row.get("split") or None, meta=meta
        )
    ]
