"""The one command-line style of the small tools (chat, serve, export, score, judge, models.convert, models.tiny).

``argparse`` underneath — so every tool has ``--help``, typed options, choices and one-line usage errors —
with one addition: a word ``key=value`` whose key is one of the tool's options is read as ``--key=value``.
That keeps the spelling of the Hydra entry points (``python -m pedgpt.train sft.max_steps=5``) valid for every
tool (``python -m pedgpt.serve model=DIR port=8001``), and the flag spelling (``--port 8001``) valid too.
Option names may be written with ``_`` or ``-`` (``--max_new_tokens``, ``--max-new-tokens``, ``max_new_tokens=``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pedgpt.common.errors import UsageError


class ToolParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that also accepts ``key=value`` words for its options and raises
    :class:`UsageError` (one line) instead of exiting on a bad argument."""

    def __init__(self, prog: str, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(
            prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
        )

    def option(self, name: str, **kwargs: Any) -> argparse.Action:
        """Add ``--name`` (``_`` and ``-`` spellings both accepted)."""
        flags = sorted({f"--{name}", f"--{name.replace('_', '-')}"}, key=len)
        kwargs.setdefault("dest", name.replace("-", "_"))
        return self.add_argument(*flags, **kwargs)

    def _known_keys(self) -> set[str]:
        keys = set()
        for action in self._actions:
            for flag in action.option_strings:
                if flag.startswith("--"):
                    keys.add(flag[2:])
        return keys

    def normalise(self, argv: Sequence[str]) -> list[str]:
        """``key=value`` → ``--key=value`` for known keys; everything else unchanged."""
        known = self._known_keys()
        out = []
        for word in argv:
            key, eq, _ = word.partition("=")
            if eq and not word.startswith("-") and key in known:
                out.append("--" + word)
            else:
                out.append(word)
        return out

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        return self.parse_args(self.normalise(sys.argv[1:] if argv is None else argv))

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def run_tool(main: Any, argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a :class:`UsageError` becomes one line on stderr and exit status 2."""
    try:
        return int(main(argv) or 0)
    except UsageError as e:
        print(f"{main.__module__.split('.')[-1]}: {e}", file=sys.stderr)
        return 2
