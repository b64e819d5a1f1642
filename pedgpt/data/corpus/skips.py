"""Counted skips that remember where they came from: :class:`SkipLog`.

Every record the builder drops is counted under a reason (``stats.json`` ``skipped``); the first few of each
reason also keep their place (``path:line`` for a source row, ``source/id`` otherwise) and, for a bad value,
the one-line explanation. The build writes those examples to ``skipped.jsonl``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, MutableMapping
from typing import Any

#: examples kept per reason
EXAMPLES_PER_REASON = 20


class SkipLog(Counter):
    """A ``Counter`` of skip reasons (``skipped[reason] += 1`` still works) plus examples of where."""

    def __init__(self, *args: Any, limit: int = EXAMPLES_PER_REASON, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit
        self.examples: dict[str, list[dict[str, str]]] = defaultdict(list)

    def note(self, reason: str, where: str | None = None, detail: str | None = None, n: int = 1) -> None:
        """Count ``n`` skips for ``reason``; keep ``where`` / ``detail`` among the first ``limit`` examples."""
        self[reason] += n
        if where is not None and len(self.examples[reason]) < self.limit:
            example = {"where": where}
            if detail:
                example["detail"] = detail
            self.examples[reason].append(example)

    def absorb(self, other: SkipLog | Counter) -> None:
        """Add another log's counts and examples to this one."""
        for reason, n in other.items():
            self[reason] += n
        for reason, rows in getattr(other, "examples", {}).items():
            room = self.limit - len(self.examples[reason])
            self.examples[reason].extend(rows[: max(0, room)])

    def rows(self) -> list[dict[str, str]]:
        """Every kept example as ``{"reason", "where"[, "detail"]}``, by reason then in the order seen."""
        return [{"reason": r, **ex} for r in sorted(self.examples) for ex in self.examples[r]]


def count_skip(
    skipped: MutableMapping[str, int], reason: str, where: str | None = None, detail: str | None = None
) -> None:
    """``skipped.note(...)`` for a :class:`SkipLog`, a plain increment for any other counter."""
    if isinstance(skipped, SkipLog):
        skipped.note(reason, where, detail)
    else:
        skipped[reason] = skipped.get(reason, 0) + 1


def merged(logs: Iterable[SkipLog | Counter]) -> SkipLog:
    """One log holding the counts and examples of ``logs``."""
    out = SkipLog()
    for log in logs:
        out.absorb(log)
    return out
