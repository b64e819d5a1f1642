"""A conversation read for triage: the user turns joined into one text, cut into clauses, with scope checks.

A matched span "holds" when it is asserted now: not negated just before it, not in a hypothetical or
past-episode clause, not an experience (抽过, 吞过) unless the clause says it is still going on. Everything a
check needs per clause and per conversation is computed once and cached, and a negation is looked for only in
a bounded window before the span, so that triage stays linear in the length of the conversation.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from pedgpt.inference.safety import red_flags as rf
from pedgpt.inference.safety.parse import (
    NEGATION_WINDOW,
    REFERS_BACK,
    Clause,
    Found,
    clauses,
    is_history,
    is_hypothetical,
    is_negated,
    parse_ages,
    parse_durations,
    parse_temperatures,
)

_ONGOING_NOW = re.compile(r"一直|还在|还是|仍|至今|到现在|持续|又|反复|刚才|刚刚|正在|今天|今晚|昨晚|昨天")
#: Still going on, said in the clause after an experience ("被摇晃过，现在一直吐"): only strong markers count.
_STILL = re.compile(r"一直|还在|正在|现在还|仍|至今|到现在|持续|又|反复")
_EXPERIENTIAL = re.compile(r"[抽吞喝吃摔烫晕磕撞溺]过(?!去)")
_AFTER_IS_HISTORY = re.compile(r"过(?!去)|.{0,2}史")
_RELAPSE = re.compile(r"又|反复|还是|还在|再次")
#: A parent asking to learn first aid ahead of time ("我想学一下", "以备不时之需"), not describing an event.
_LEARNING = re.compile(r"想学|学一下|学习一下|以备不时之需|提前学|科普一下")
_NOW = re.compile(r"刚才|刚刚|现在|正在|突然|马上|怎么办|急")
CONTEXTS = {name: re.compile(pattern) for name, pattern in rf.CONTEXTS.items()}


class Conversation:
    """The user turns joined into one text (turns end clauses), with scope checks for a matched span.

    Everything a check needs per clause (hypothetical, history, ongoing, durations) and per conversation (ages,
    temperatures, the last clause that says a fever or choking is over) is computed once and cached, and a
    negation is looked for only in a bounded window before the span: total work is linear in the text.
    """

    def __init__(self, turns: list[str]) -> None:
        self.text = "\n".join(turns)
        self.parts: list[Clause] = clauses(self.text) or [Clause(0, len(self.text), self.text)]
        self._starts = [c.start for c in self.parts]
        self._contexts: dict[str, bool] = {}
        self._scope: dict[int, bool] = {}
        self._ongoing: dict[int, bool] = {}
        self._durations: dict[int, list[Found]] = {}
        self._last_over: dict[re.Pattern, int] = {}
        self._ages: list[Found] | None = None
        self._temps: list[Found] | None = None
        self._clause_hits: dict[tuple[re.Pattern, int], bool] = {}
        self._negated: dict[int, bool] = {}
        self.learning = bool(_LEARNING.search(self.text)) and not _NOW.search(self.text)

    def index(self, pos: int) -> int:
        return max(bisect.bisect_right(self._starts, pos) - 1, 0)

    def _negated_at(self, pos: int) -> bool:
        if pos not in self._negated:  # the same position is asked by several patterns: once each
            start = max(self.parts[self.index(pos)].start, pos - NEGATION_WINDOW)
            self._negated[pos] = is_negated(self.text[start:pos])
        return self._negated[pos]

    def _out_of_scope(self, i: int) -> bool:
        """Clause ``i`` is hypothetical or a past episode (computed once per clause)."""
        if i not in self._scope:
            text = self.parts[i].text
            out = is_hypothetical(text) or is_history(text)
            if not out and i > 0 and REFERS_BACK.match(text):  # "当时吐了一次": as past as the clause before
                out = is_history(self.parts[i - 1].text)
            self._scope[i] = out
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
        ongoing = self._ongoing_now(i) or (i + 1 < len(self.parts) and bool(_STILL.search(self.parts[i + 1].text)))
        return not (experiential and not ongoing)

    def clause_has(self, pattern: re.Pattern, pos: int) -> bool:
        """Whether the clause holding ``pos`` matches ``pattern`` (once per clause and pattern)."""
        key = (pattern, self.index(pos))
        if key not in self._clause_hits:
            self._clause_hits[key] = bool(pattern.search(self.parts[key[1]].text))
        return self._clause_hits[key]

    def first(self, pattern: re.Pattern, unless: re.Pattern | None = None) -> re.Match | None:
        """The first match of ``pattern`` that holds, and whose clause does not match ``unless``."""
        syms = [g for g in pattern.groupindex if g.startswith("sym")]
        for m in pattern.finditer(self.text):
            if unless is not None and self.clause_has(unless, m.start()):
                continue
            if self.holds(m.start(), m.end(), [m.start(g) for g in syms if m.start(g) >= 0]):
                return m
        return None

    def all(self, pattern: re.Pattern) -> list[re.Match]:
        return [m for m in pattern.finditer(self.text) if self.holds(m.start(), m.end())]

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
                found = self.first(CONTEXTS[name]) is not None
                if name == "fever" and not found:
                    found = any(t.value >= rf.FEVER_C for t in self.temperatures())
                self._contexts[name] = found
        return self._contexts[name]

    def temperatures(self) -> list[Found]:
        if self._temps is None:
            self._temps = [t for t in parse_temperatures(self.text) if self.holds(t.start, t.end)]
        return self._temps
