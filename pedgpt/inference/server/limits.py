"""Request limits of the server; going over one is a 4xx with an OpenAI error body naming the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_message_chars: int = 4000  # characters in one message (400 ``message_too_long``)
    max_turns: int = 40  # user + assistant messages in one request (400 ``too_many_turns``)
    max_new_tokens: int = 1024  # ``max_tokens`` / ``max_completion_tokens`` (400 ``max_tokens_too_large``)
    max_pending: int = 16  # requests queued or running at once (429 ``queue_full``)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{name}: must be a positive integer, got {value!r}")
