"""``triage(text_or_messages) -> Triage``: does this conversation need emergency care now?

Reads every user turn of the conversation (so an age given two turns earlier counts), finds the red flags
of :mod:`pedgpt.inference.safety.red_flags` that hold now (negated, hypothetical and past mentions are ignored:
:mod:`~pedgpt.inference.safety.scope`), adds the numeric ones (:mod:`~pedgpt.inference.safety.thresholds`),
and writes what to tell the parent. Pure Python regular expressions; no model; linear in the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pedgpt.inference.safety import red_flags as rf
from pedgpt.inference.safety.scope import Conversation
from pedgpt.inference.safety.thresholds import threshold_flags

_CHOKING_CLEARED = re.compile(r"(?:咳|吐|拍|抠|取|夹|弄)出来了|已经出来了|咽下去了|好了(?![点一些很不多])|没事了")
_MOUTH_ONLY = re.compile(r"(?:嘴|口)里")
_SPAT_OUT = re.compile(r"(?:拿|抠|吐|掏|取)(?:了)?出来|吐掉了|没(?:有)?(?:吞|咽)")
#: Every trigger pattern (and its ``unless``), compiled once.
_TRIGGERS = {t.pattern: re.compile(t.pattern) for f in rf.RED_FLAGS for t in f.triggers}
_UNLESS = {t.unless: re.compile(t.unless) for f in rf.RED_FLAGS for t in f.triggers if t.unless}


@dataclass
class Triage:
    """The result: ``urgent``; ``reasons`` as ``"<category id>: <matched text>"``; ``message`` for the parent
    (Chinese; empty when not urgent); ``category``, the most serious matched id (table order) or None."""

    urgent: bool
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    category: str | None = None

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(r.split(":", 1)[0] for r in self.reasons))


def _user_turns(conversation: Any) -> list[str]:
    if isinstance(conversation, str):
        return [conversation]
    if not isinstance(conversation, Iterable):
        raise TypeError(f"triage expects a string or a list of messages, got {type(conversation).__name__}")
    turns = []
    for i, m in enumerate(conversation):
        if isinstance(m, str):
            turns.append(m)
            continue
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role is None or not isinstance(content, str):
            raise TypeError(f"triage: message {i} needs a 'role' and a string 'content', got {m!r:.80}")
        if role == "user":
            turns.append(content)
    return turns


def _needs_hold(conv: Conversation, needs: tuple[str, ...]) -> bool:
    return all(not conv.context(n[1:]) if n.startswith("!") else conv.context(n) for n in needs)


def _cleared(conv: Conversation, flag_id: str, m: re.Match) -> bool:
    """A choking episode, or an object only put in the mouth, that a later clause says is out again."""
    if flag_id == "choking":
        return conv.later_clause_matches(m.start(), _CHOKING_CLEARED)
    if flag_id == "poisoning" and _MOUTH_ONLY.search(m.group(0)):
        return conv.later_clause_matches(m.start(), _SPAT_OUT)
    return False


def _pattern_flags(conv: Conversation) -> dict[str, str]:
    found: dict[str, str] = {}
    for flag in rf.RED_FLAGS:
        for trigger in flag.triggers:
            if not _needs_hold(conv, trigger.needs):
                continue
            m = conv.first(_TRIGGERS[trigger.pattern], _UNLESS.get(trigger.unless))
            if m is None or _cleared(conv, flag.id, m):
                continue
            found[flag.id] = m.group(0)
            break
    return found


def _message(ids: list[str]) -> str:
    flags = [rf.FLAGS_BY_ID[i] for i in ids]
    actions = [a for a in ("poison", "crisis", "emergency") if any(f.action == a for f in flags)]
    lines = ["【紧急提醒】根据您的描述：" + "；".join(f.why for f in flags) + "。"]
    lines += [rf.ACTIONS[a] for a in actions]
    aid = list(dict.fromkeys(f.first_aid for f in flags if f.first_aid))
    if aid:
        lines.append("等待急救时：" + "".join(aid))
    lines.append(rf.DISCLAIMER)
    return "\n".join(lines)


def triage(conversation: Any) -> Triage:
    """Triage a parent's message (a string) or a conversation (a list of ``{"role", "content"}`` dicts or
    :class:`pedgpt.data.schema.Message`; only user turns are read). Returns a :class:`Triage`."""
    conv = Conversation(_user_turns(conversation))
    if conv.learning:  # "怎么做海姆立克，我想学一下": a first-aid question asked ahead of time
        return Triage(urgent=False)
    found = threshold_flags(conv)
    for fid, text in _pattern_flags(conv).items():
        found.setdefault(fid, text)
    ids = [f.id for f in rf.RED_FLAGS if f.id in found]
    if not ids:
        return Triage(urgent=False)
    return Triage(urgent=True, reasons=[f"{i}: {found[i]}" for i in ids], message=_message(ids), category=ids[0])
