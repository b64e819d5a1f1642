"""The OpenAI chat-completions wire format: the request model, its checks, and response / chunk bodies.

Extensions (ignored by OpenAI clients, sent with ``extra_body``): ``task`` in the request picks the MoE-LoRA
routing task. Responses carry ``pedgpt_safety`` (the triage of the conversation; in a stream, on the first
chunk, before any model text) and ``pedgpt_dropped_messages`` (oldest turns left out to fit the context).
Unknown request fields are ignored, as OpenAI-compatible servers commonly do.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pedgpt.data.schema import TASKS, Message
from pedgpt.inference.generation import GenerationSettings
from pedgpt.inference.safety import DISCLAIMER, Triage
from pedgpt.inference.server.errors import APIError, invalid_request
from pedgpt.inference.server.limits import Limits


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    task: str | None = None


@dataclass(frozen=True)
class ChatJob:
    """A checked request: the conversation (user/assistant, ending with user), system text, task, settings."""

    messages: list[Message]
    system: str | None
    task: str | None
    settings: GenerationSettings
    stream: bool
    include_usage: bool


def _text(msg: ChatMessage, i: int) -> str:
    if msg.content is None:
        raise APIError(400, f"messages[{i}].content: required", param=f"messages[{i}].content", code="missing")
    if isinstance(msg.content, str):
        return msg.content
    parts = []
    for j, part in enumerate(msg.content):
        if part.type != "text" or part.text is None:
            raise APIError(
                400,
                f"messages[{i}].content[{j}]: only text parts are supported, got {part.type!r}",
                param=f"messages[{i}].content[{j}]",
                code="unsupported_content",
            )
        parts.append(part.text)
    return "".join(parts)


def parse_body(body: bytes) -> ChatCompletionRequest:
    """The JSON request body → :class:`ChatCompletionRequest`; :class:`APIError` 400 naming the first bad field."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except ValidationError as e:
        raise invalid_request(e.errors(include_url=False)) from None


def parse_request(
    req: ChatCompletionRequest, limits: Limits, default: GenerationSettings, default_task: str | None
) -> ChatJob:
    """Check ``req`` against the protocol and ``limits``; raise :class:`APIError` (400) naming the field.

    The turn limit counts every message, system and developer ones included, and is checked first."""
    if len(req.messages) > limits.max_turns:
        raise APIError(
            400,
            f"messages: {len(req.messages)} messages (system ones included), over the limit of {limits.max_turns}",
            param="messages",
            code="too_many_turns",
        )
    if req.stop is not None:
        raise APIError(
            400,
            "stop: custom stop sequences are not supported (the chat template's own are used)",
            param="stop",
            code="unsupported_parameter",
        )
    if req.task is not None and req.task not in TASKS:
        raise APIError(
            400, f"task: unknown task {req.task!r}; known: {', '.join(TASKS)}", param="task", code="invalid_value"
        )
    system_parts, conv = [], []
    for i, m in enumerate(req.messages):
        text = _text(m, i)
        if len(text) > limits.max_message_chars:
            raise APIError(
                400,
                f"messages[{i}].content: {len(text)} characters, over the limit of {limits.max_message_chars}",
                param=f"messages[{i}].content",
                code="message_too_long",
            )
        if m.role in ("system", "developer"):
            if conv:
                raise APIError(
                    400,
                    f"messages[{i}]: a system message must come before the conversation",
                    param=f"messages[{i}].role",
                    code="invalid_value",
                )
            system_parts.append(text)
            continue
        expect = "user" if len(conv) % 2 == 0 else "assistant"
        if m.role != expect:
            raise APIError(
                400,
                f"messages[{i}].role: expected {expect!r} (turns alternate, starting with user), got {m.role!r}",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        conv.append(Message(m.role, text))
    if not conv or conv[-1].role != "user":
        raise APIError(400, "messages: the last message must be from the user", param="messages", code="invalid_value")
    return ChatJob(
        conv,
        "\n".join(system_parts) or None,
        req.task or default_task,
        _settings(req, limits, default),
        req.stream,
        bool((req.stream_options or {}).get("include_usage")),
    )


def _settings(req: ChatCompletionRequest, limits: Limits, default: GenerationSettings) -> GenerationSettings:
    for key in ("max_completion_tokens", "max_tokens"):
        value = getattr(req, key)
        if value is not None and value > limits.max_new_tokens:
            raise APIError(
                400,
                f"{key}: {value} is over the limit of {limits.max_new_tokens} new tokens",
                param=key,
                code="max_tokens_too_large",
            )
    wanted = req.max_completion_tokens or req.max_tokens or min(default.max_new_tokens, limits.max_new_tokens)
    s = replace(default, max_new_tokens=wanted)
    if req.temperature is not None:
        s = replace(s, do_sample=req.temperature > 0, temperature=req.temperature or s.temperature)
    if req.top_p is not None:
        s = replace(s, top_p=req.top_p)
    if req.seed is not None:
        s = replace(s, seed=req.seed)
    return s


# -- bodies --------------------------------------------------------------------------------------------
def safety_body(verdict: Triage) -> dict[str, Any]:
    return {
        "urgent": verdict.urgent,
        "category": verdict.category,
        "categories": verdict.categories,
        "reasons": list(verdict.reasons),
        "message": verdict.message,
        "disclaimer": DISCLAIMER,
    }


class Completion:
    """Ids and shared fields for one response (all chunks of a stream share the id)."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def full(
        self, content: str, finish_reason: str, usage: dict[str, int], safety: dict[str, Any], dropped: int
    ) -> dict[str, Any]:
        return {
            **self._base("chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
            "pedgpt_safety": safety,
            "pedgpt_dropped_messages": dropped,
        }

    def first_chunk(self, safety: dict[str, Any], dropped: int) -> dict[str, Any]:
        return {
            **self._base("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
            "pedgpt_safety": safety,
            "pedgpt_dropped_messages": dropped,
        }

    def chunk(self, delta: str | None, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **self._base("chat.completion.chunk"),
            "choices": [
                {"index": 0, "delta": {} if delta is None else {"content": delta}, "finish_reason": finish_reason}
            ],
        }

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        return {**self._base("chat.completion.chunk"), "choices": [], "usage": usage}
