"""``key=value`` command-line parsing shared by the small CLIs (chat, serve, export)."""
from __future__ import annotations

from typing import Any


class UsageError(ValueError):
    """A bad command-line argument; the message names the key."""


def parse_args(argv: list[str], known: tuple[str, ...]) -> dict[str, str]:
    """``key=value`` words (``--key=value`` and ``--key value`` too) into a dict; unknown keys raise."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        key, eq, value = word.lstrip("-").partition("=")
        if not eq:
            if not word.startswith("--") or i + 1 >= len(argv):
                raise UsageError(f"argument {word!r}: expected key=value (keys: {', '.join(known)})")
            value, i = argv[i + 1], i + 1
        if key not in known:
            raise UsageError(f"unknown key {key!r}; known keys: {', '.join(known)}")
        out[key] = value
        i += 1
    return out


def number(args: dict[str, str], key: str, kind: type) -> Any:
    try:
        return kind(args[key])
    except ValueError:
        raise UsageError(f"{key}={args[key]!r}: expected {kind.__name__}") from None
