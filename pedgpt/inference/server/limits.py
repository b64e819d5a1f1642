"""Request limits of the server; going over one is a 4xx with an OpenAI error body naming the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_message_chars: int = 4000  # characters in one message (400 ``message_too_long``)
    max_turns: int = 40  # messages in one request, system / developer included (400 ``too_many_turns``)
    max_new_tokens: int = 1024  # ``max_tokens`` / ``max_completion_tokens`` (400 ``max_tokens_too_large``)
    max_pending: int = 16  # requests queued or running at once (429 ``queue_full``)
    #: bytes of one request body, counted before any JSON is parsed (413 ``request_too_large``). The default
    #: holds a maximal conversation (40 messages of 4,000 characters) even with every character \u-escaped.
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limits.{name}: must be a positive integer, got {value!r}")
