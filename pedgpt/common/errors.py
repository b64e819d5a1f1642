"""Error types whose message is one line for the user; entry points print it and exit with status 2."""

from __future__ import annotations


class PedgptError(Exception):
    """Base class: a problem the user can fix, explained in one line (no traceback needed)."""


class ConfigError(PedgptError, ValueError):
    """A bad setting; the message names the config key."""


class CheckpointError(PedgptError, RuntimeError):
    """A checkpoint that is missing, incomplete, corrupted or written for another model."""


class NonFiniteError(PedgptError, RuntimeError):
    """Too many non-finite training steps in a row."""


class ModelPathError(PedgptError, FileNotFoundError):
    """Model weights or an export directory that cannot be found or read."""


class UsageError(PedgptError, ValueError):
    """A bad command-line argument of a small tool; the message names the option."""


class DataError(PedgptError, ValueError):
    """Training data that cannot be used (no examples left, a bad record); the message says where and why."""
