"""An ``argparse`` parser for the model CLIs that also takes ``key=value`` words (as ``--key=value``) and reports
usage errors as one line on stderr (exit status 2)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence


class WordArgumentParser(argparse.ArgumentParser):
    """``src=DIR`` is read as ``--src=DIR``; ``--help`` works as usual."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        words = list(sys.argv[1:] if args is None else args)
        return super().parse_args([as_option(w) for w in words], namespace)

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message} (see --help)")


def as_option(word: str) -> str:
    """``key=value`` → ``--key=value`` (``-x``/``--x`` words and bare values are left alone)."""
    key, eq, _ = word.partition("=")
    if eq and key and not word.startswith("-") and key.replace("_", "").replace("-", "").isalnum():
        return f"--{word}"
    return word


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)
