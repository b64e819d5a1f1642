"""Preference pairs (``prompt``, optional ``history``, ``chosen``, ``rejected``) → PreferencePair.

``history`` is ``[[user, assistant], ...]`` or a list of ``{role, content}``; ``question``/``response_chosen``
/``response_rejected`` (MedicalGPT reward spelling) are accepted too. The task is ``consult`` for
``domain: medical`` pairs and ``general`` otherwise, unless ``tasks_by_source`` says more. A pair whose
chosen and rejected answers are identical is skipped as ``identical_pair``.
"""

from __future__ import annotations

from typing import Any

from pedgpt.data.corpus.sources.base import Context, Unusable, source_name, text_of
from pedgpt.data.corpus.sources.consult import _history
from pedgpt.data.schema import Message, PreferencePair, stable_id

PROMPT_KEYS = ("prompt", "question", "instruction")
CHOSEN_KEYS = ("chosen", "response_chosen")
REJECTED_KEYS = ("rejected", "response_rejected")


def detect(keys: set[str]) -> bool:
    return bool(keys & set(CHOSEN_KEYS)) and bool(keys & set(REJECTED_KEYS))


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return next((text_of(row[k]) for k in keys if text_of(row.get(k))), "")


def convert(row: dict[str, Any], ctx: Context) -> list[PreferencePair]:
    prompt, chosen, rejected = (_first(row, k) for k in (PROMPT_KEYS, CHOSEN_KEYS, REJECTED_KEYS))
    if not prompt:
        raise Unusable("empty_prompt")
    if not chosen or not rejected:
        raise Unusable("empty_answer")
    if chosen == rejected:
        raise Unusable("identical_pair")
    history = _history(row.get("history"))
    if any(not m.content for m in history):
        raise Unusable("empty_history_turn")
    source = source_name(row.get("src"), ctx.path)
    default_task = "consult" if str(row.get("domain", "")).lower() == "medical" else "general"
    task = (ctx.options.get("tasks_by_source") or {}).get(source, default_task)
    messages = history + [Message("user", prompt)]
    first_user = messages[0].content
    rid = text_of(row.get("id")) or stable_id(source, [m.content for m in messages], chosen, rejected)
    meta: dict[str, Any] = {"dialogue": stable_id(source, first_user)}
    if row.get("department"):
        meta["department"] = text_of(row["department"])
    return [
        PreferencePair(
            prompt=messages,
            chosen=chosen,
            rejected=rejected,
            task=task,
            source=source,
            id=rid,
            split=row.get("split") or None,
            meta=meta,
        )
    ]
