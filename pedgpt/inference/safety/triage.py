"""``triage(text_or_messages) -> Triage``: does this conversation need emergency care now?

Reads every user turn of the conversation (so an age given two turns earlier counts), finds the red flags
of :mod:`pedgpt.inference.safety.red_flags` that hold now (negated, hypothetical and past mentions are ignored), and
writes what to tell the parent. Pure Python regular expressions; no model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pedgpt.inference.safety import red_flags as rf
from pedgpt.inference.safety.parse import (
    NEGATION_WINDOW,
    Clause,
    Found,
    clause_index,
    clauses,
    is_history,
    is_hypothetical,
    is_negated,
    no_urine_hours,
    parse_ages,
    parse_durations,
    parse_temperatures,
)

_ONGOING_NOW = re.compile(r"一直|还在|还是|仍|至今|到现在|持续|又|反复|刚才|刚刚|正在|今天|今晚|昨晚|昨天")
_EXPERIENTIAL = re.compile(r"[抽吞喝吃摔烫晕磕撞溺]过(?!去)")
_AFTER_IS_HISTORY = re.compile(r"过(?!去)|.{0,2}史")
_FEVER_GONE = re.compile(
    r"(?:已经|已)(?:退烧|退热|不烧)|退烧了|退热了|不烧了|烧退了|烧(?:已经)?退(?:了|下来)|体温(?:已经)?(?:正常|降下来|恢复)|已经退了|"
    r"降下来了|好了(?![点一些很不多])|没事了|恢复正常|痊愈"
)
_CHOKING_CLEARED = re.compile(r"(?:咳|吐|拍|抠|取|夹|弄)出来了|已经出来了|咽下去了|好了(?![点一些很不多])|没事了")
_MOUTH_ONLY = re.compile(r"(?:嘴|口)里")
_SPAT_OUT = re.compile(r"(?:拿|抠|吐|掏|取)(?:了)?出来|吐掉了|没(?:有)?(?:吞|咽)")
_RELAPSE = re.compile(r"又|反复|还是|还在|再次")
_LOW_GRADE = re.compile(r"低烧|低热")
_CONTEXTS = {name: re.compile(pattern) for name, pattern in rf.CONTEXTS.items()}
_FEVER_WORD = _CONTEXTS["fever"]
#: Every trigger pattern, compiled once.
_TRIGGERS = {t.pattern: re.compile(t.pattern) for f in rf.RED_FLAGS for t in f.triggers}
_DURATION_FIRST = re.compile(r"^\s*(?:已经|都|持续|有|快|前后|一共)*\s*$")


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


class _Conversation:
    """The user turns joined into one text (turns end clauses), with scope checks for a matched span.

    Everything a check needs per clause (hypothetical, history, ongoing, durations) and per conversation (ages,
    temperatures, the last clause that says a fever or choking is over) is computed once and cached, and a
    negation is looked for only in a bounded window before the span: total work is linear in the text.
    """

    def __init__(self, turns: list[str]) -> None:
        self.text = "\n".join(turns)
        self.parts: list[Clause] = clauses(self.text) or [Clause(0, len(self.text), self.text)]
        self._contexts: dict[str, bool] = {}
        self._scope: dict[int, bool] = {}
        self._ongoing: dict[int, bool] = {}
        self._durations: dict[int, list[Found]] = {}
        self._last_over: dict[re.Pattern, int] = {}
        self._ages: list[Found] | None = None
        self._temps: list[Found] | None = None

    def index(self, pos: int) -> int:
        return clause_index(self.parts, pos)

    def _negated_at(self, pos: int) -> bool:
        start = max(self.parts[self.index(pos)].start, pos - NEGATION_WINDOW)
        return is_negated(self.text[start:pos])

    def _out_of_scope(self, i: int) -> bool:
        """Clause ``i`` is hypothetical or a past episode (computed once per clause)."""
        if i not in self._scope:
            text = self.parts[i].text
            self._scope[i] = is_hypothetical(text) or is_history(text)
        return self._scope[i]

    def _ongoing_now(self, i: int) -> bool:
        if i not in self._ongoing:
            self._ongoing[i] = bool(_ONGOING_NOW.search(self.parts[i].text))
        return self._ongoing[i]

    def holds(self, start: int, end: int, sym_starts: Iterable[int] = ()) -> bool:
        """Whether the span is asserted now: not negated, not hypothetical, not a past episode."""
        if self._negated_at(start) or any(self._negated_at(pos) for pos in sym_starts):
            return False
        i = self.index(start)
        if self._out_of_scope(i):
            return False
        experiential = _EXPERIENTIAL.search(self.text, start, end) or _AFTER_IS_HISTORY.match(self.text, end)
        return not (experiential and not self._ongoing_now(i))

    def first(self, pattern: re.Pattern) -> re.Match | None:
        syms = [g for g in pattern.groupindex if g.startswith("sym")]
        for m in pattern.finditer(self.text):
            if self.holds(m.start(), m.end(), [m.start(g) for g in syms if m.start(g) >= 0]):
                return m
        return None

    def later_clause_matches(self, pos: int, pattern: re.Pattern) -> bool:
        """Whether a clause after the one at ``pos`` says it is over (退烧了, 咳出来了) without a relapse."""
        if pattern not in self._last_over:
            last = -1
            for i, c in enumerate(self.parts):
                if pattern.search(c.text) and not _RELAPSE.search(c.text):
                    last = i
            self._last_over[pattern] = last
        return self._last_over[pattern] > self.index(pos)

    def durations_in(self, i: int) -> list[Found]:
        if i not in self._durations:
            self._durations[i] = parse_durations(self.parts[i].text)
        return self._durations[i]

    def youngest_age(self) -> float | None:
        if self._ages is None:
            self._ages = parse_ages(self.text)
        return min(a.value for a in self._ages) if self._ages else None

    def context(self, name: str) -> bool:
        if name not in self._contexts:
            if name == "young_infant":
                age = self.youngest_age()
                self._contexts[name] = age is not None and age < rf.INFANT_FEVER_BANDS[0][0]
            else:
                found = self.first(_CONTEXTS[name]) is not None
                if name == "fever" and not found:
                    found = any(t.value >= rf.FEVER_C for t in self.temperatures())
                self._contexts[name] = found
        return self._contexts[name]

    def temperatures(self) -> list[Found]:
        if self._temps is None:
            self._temps = [t for t in parse_temperatures(self.text) if self.holds(t.start, t.end)]
        return self._temps


def _needs_hold(conv: _Conversation, needs: tuple[str, ...]) -> bool:
    return all(not conv.context(n[1:]) if n.startswith("!") else conv.context(n) for n in needs)


def _cleared(conv: _Conversation, flag_id: str, m: re.Match) -> bool:
    """A choking episode, or an object only put in the mouth, that a later clause says is out again."""
    if flag_id == "choking":
        return conv.later_clause_matches(m.start(), _CHOKING_CLEARED)
    if flag_id == "poisoning" and _MOUTH_ONLY.search(m.group(0)):
        return conv.later_clause_matches(m.start(), _SPAT_OUT)
    return False


def _pattern_flags(conv: _Conversation) -> dict[str, str]:
    found: dict[str, str] = {}
    for flag in rf.RED_FLAGS:
        for trigger in flag.triggers:
            if not _needs_hold(conv, trigger.needs):
                continue
            m = conv.first(_TRIGGERS[trigger.pattern])
            if m is None or _cleared(conv, flag.id, m):
                continue
            found[flag.id] = m.group(0)
            break
    return found


def _fever_words(conv: _Conversation) -> list[re.Match]:
    return [m for m in _FEVER_WORD.finditer(conv.text) if conv.holds(m.start(), m.end())]


def _threshold_flags(conv: _Conversation) -> dict[str, str]:
    found: dict[str, str] = {}
    temps = conv.temperatures()
    fever_words = _fever_words(conv)
    age = conv.youngest_age()
    if age is not None:
        for below, at_least in rf.INFANT_FEVER_BANDS:
            hot = [t for t in temps if t.value >= at_least]
            if age < below and hot:
                found["infant_fever"] = f"{age:g}个月, {hot[0].value:g}℃"
                break
        unmeasured = [m for m in fever_words if not _LOW_GRADE.match(m.group(0))] if not temps else []
        if "infant_fever" not in found and age < rf.INFANT_FEVER_BANDS[0][0] and unmeasured:
            found["infant_fever"] = f"{age:g}个月, {unmeasured[0].group(0)}"
    for below, at_most in rf.LOW_TEMPERATURE_BANDS:
        cold = [t for t in temps if t.value <= at_most]
        if cold and (below == float("inf") or (age is not None and age < below)):
            found["low_temperature"] = conv.text[cold[0].start : cold[0].end]
            break
    current = [t for t in temps if not conv.later_clause_matches(t.start, _FEVER_GONE)]
    high = [t for t in current if t.value >= rf.HIGH_FEVER_C]
    if high:
        found["high_fever"] = conv.text[high[0].start : high[0].end]
    for m in fever_words:
        if conv.later_clause_matches(m.start(), _FEVER_GONE):
            continue
        i = conv.index(m.start())
        here = conv.parts[i]
        days = [d.value for d in conv.durations_in(i)]
        if i + 1 < len(conv.parts):  # "发烧，已经5天了": the duration leads the next clause
            c, lead = conv.parts[i + 1], conv.durations_in(i + 1)
            if lead and _DURATION_FIRST.match(c.text[: lead[0].start]):
                days.append(lead[0].value)
        if days and max(days) >= rf.PROLONGED_FEVER_DAYS:
            found["prolonged_fever"] = here.text.strip()
            break
    dry = [h for h in no_urine_hours(conv.text) if h.value >= rf.NO_URINE_HOURS and conv.holds(h.start, h.end)]
    if dry:
        found["dehydration"] = conv.text[dry[0].start : dry[0].end]
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
    conv = _Conversation(_user_turns(conversation))
    found = _threshold_flags(conv)
    for fid, text in _pattern_flags(conv).items():
        found.setdefault(fid, text)
    ids = [f.id for f in rf.RED_FLAGS if f.id in found]
    if not ids:
        return Triage(urgent=False)
    return Triage(urgent=True, reasons=[f"{i}: {found[i]}" for i in ids], message=_message(ids), category=ids[0])
