"""Preference pairs (``prompt``, optional ``history``, ``chosen``, ``rejected``) → PreferencePair.

``history`` is ``[[user, assistant], ...]`` or a list of ``{role, content}``; ``question``/``response_chosen``
/``response_rejected`` (MedicalGPT reward spelling) are accepted too. The task is ``consult`` for
``domain: medical`` pairs and ``general`` otherwise, unless ``tasks_by_source`` says more. A pair whose
chosen and rejected answers are identical is skipped as ``identical_pair``.

Types: prompt, chosen, rejected, domain, department and ``src`` are text (``null`` = absent), ``history`` as
in :mod:`~pedgpt.data.corpus.sources.consult`; anything else is a
:class:`~pedgpt.data.corpus.sources.base.BadValue` (``bad_type:<field>``, ``bad_role:history.role``).
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, first_text, id_of, source_name, split_of, text_of
from pedgpt.data.corpus.sources.consult import _history
from pedgpt.data.schema import Message, PreferencePair, stable_id

PROMPT_KEYS = ("prompt", "question", "instruction")
CHOSEN_KEYS = ("chosen", "response_chosen")
REJECTED_KEYS = ("rejected", "response_rejected")


def detect(keys: set[str]) -> bool:
    return bool(keys & set(CHOSEN_KEYS)) and bool(keys & set(REJECTED_KEYS))


def convert(row: dict[str, Any], ctx: Context) -> list[PreferencePair]:
    prompt, chosen, rejected = (first_text(row, k) for k in (PROMPT_KEYS, CHOSEN_KEYS, REJECTED_KEYS))
    if not prompt:
        raise Unusable("empty_prompt")
    if not chosen or not rejected:
        raise Unusable("empty_answer")
    if chosen == rejected:
        raise Unusable("identical_pair")
    history = _history(row.get("history"))
    if any(not m.content for m in history):
        raise Unusable("empty_history_turn")
    source = source_name(text_of(row.get("src"), "src"), ctx.path)
    default_task = "consult" if text_of(row.get("domain"), "domain").lower() == "medical" else "general"
    task = (ctx.options.get("tasks_by_source") or {}).get(source, default_task)
    messages = history + [Message("user", prompt)]
    first_user = messages[0].content
    rid = id_of(row.get("id")) or stable_id(source, [m.content for m in messages], chosen, rejected)
    meta: dict[str, Any] = {"dialogue": stable_id(source, first_user)}
    department = text_of(row.get("department"), "department")
    if department:
        meta["department"] = department
    return [
        PreferencePair(
            prompt=messages,
            chosen=chosen,
            rejected=rejected,
            task=task,
            source=source,
            id=rid,
            split=split_of(row.get("split")),
            meta=meta,
        )
    ]
