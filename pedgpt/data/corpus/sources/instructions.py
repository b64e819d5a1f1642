"""Instruction files: Alpaca (``instruction``, ``input``, ``output``, optional ``system``/``history``) and
ShareGPT (``conversations: [{from, value}]``, or ``messages: [{role, content}]``) → Instruction.

Placeholders ``{{name}}`` / ``{{author}}`` (LLaMA-Factory's identity file) are filled from the ``identity``
option; a record that still holds a placeholder with no value configured is skipped as
``unfilled_placeholder``. A ShareGPT conversation ending on a user turn loses that turn; one whose roles do
not alternate is skipped as ``bad_turn_order``. The task is ``general`` unless ``tasks_by_source`` says.

Types: ``instruction``, ``input``, ``output``, ``system`` and every turn's ``value`` / ``content`` are text
(``null`` = absent); a ShareGPT role (``from`` / ``role``) is one of the user and assistant spellings of
:mod:`~pedgpt.data.corpus.sources.consult`, or ``system`` as the first turn only. Anything else is a
:class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``, ``bad_role:conversations.from``;
a system turn after the first: ``bad_role:conversations``).
"""

from __future__ import annotations

import re
from typing import Any

from pedgpt.data.corpus.sources.base import (
    BadValue,
    Context,
    Unusable,
    bad_type,
    id_of,
    role_of,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.corpus.sources.consult import ASSISTANT_ROLES, USER_ROLES, _history, alternates
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


def _sharegpt(turns: Any, field: str) -> tuple[str | None, list[Message]]:
    if not isinstance(turns, list):
        raise bad_type(field, "a list of turns", turns)
    system, msgs = None, []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise bad_type(f"{field}[]", "a {from, value} object", turn)
        role_key = "from" if "from" in turn else "role"
        role = role_of(turn.get(role_key), f"{field}.{role_key}", USER_ROLES | ASSISTANT_ROLES | {"system"})
        content_key = "value" if "value" in turn else "content"
        content = text_of(turn.get(content_key), f"{field}.{content_key}")
        if role == "system":
            if i:
                raise BadValue(
                    f"bad_role:{field}", f"field {field!r}: a system turn is only allowed first, found at turn {i}"
                )
            system = content or None
            continue
        msgs.append(Message("user" if role in USER_ROLES else "assistant", content))
    while msgs and msgs[-1].role == "user":
        msgs.pop()
    return system, msgs


def convert(row: dict[str, Any], ctx: Context) -> list[Instruction]:
    if "conversations" in row or "messages" in row:
        key = "conversations" if "conversations" in row else "messages"
        system, msgs = _sharegpt(row[key] if row[key] is not None else [], key)
    else:
        parts = (text_of(row.get("instruction"), "instruction"), text_of(row.get("input"), "input"))
        user = "\n".join(p for p in parts if p)
        system = text_of(row.get("system"), "system") or None
        output = text_of(row.get("output"), "output")
        msgs = _history(row.get("history")) + [Message("user", user), Message("assistant", output)]
    if not msgs:
        raise Unusable("empty_conversation")
    if not alternates(msgs):
        raise Unusable("bad_turn_order")
    if not msgs[-1].content:
        raise Unusable("empty_answer")
    if any(not m.content for m in msgs):
        raise Unusable("empty_turn")
    values = {k: str(v) for k, v in (ctx.options.get("identity") or {}).items()}
    msgs = [Message(m.role, fill_placeholders(m.content, values)) for m in msgs]
    source = source_name(text_of(row.get("src"), "src"), ctx.path)
    task = (ctx.options.get("tasks_by_source") or {}).get(source, "general")
    rid = id_of(row.get("id")) or stable_id(source, [m.content for m in msgs])
    meta = {"dialogue": stable_id(source, msgs[0].content)}
    return [
        Instruction(
            messages=msgs, task=task, system=system, source=source, id=rid, split=split_of(row.get("split")), meta=meta
        )
    ]
