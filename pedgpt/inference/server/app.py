"""The FastAPI app: the web page, ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /info``.

Triage (:func:`pedgpt.inference.safety.triage` over the whole conversation) runs before the model on every request.
Its result travels beside the answer, never inside it: ``pedgpt_safety`` on the completion, or on the first
stream chunk — so a client (the web page) can show the emergency guidance before any model text arrives,
while ``content`` stays the model's own words for evaluation.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from pedgpt.data.schema import TASK_TITLES, TASKS
from pedgpt.inference.conversation import prompt_tokens, trim_history
from pedgpt.inference.generation import PRESETS, GenerationSettings
from pedgpt.inference.safety import DISCLAIMER, triage
from pedgpt.inference.server.errors import APIError, install_error_handlers
from pedgpt.inference.server.limits import Limits
from pedgpt.inference.server.protocol import ChatCompletionRequest, ChatJob, Completion, parse_request, safety_body
from pedgpt.inference.server.worker import GenerationWorker
from pedgpt.models.exports import LoadedModel

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def create_app(
    loaded: LoadedModel,
    *,
    limits: Limits | None = None,
    api_key: str | None = None,
    model_name: str | None = None,
    default_task: str | None = None,
    settings: GenerationSettings = PRESETS["greedy"],
) -> FastAPI:
    """An app serving ``loaded``. With ``api_key`` set, ``/v1/*`` needs ``Authorization: Bearer <key>``
    (401 otherwise); without, any key is accepted. ``settings`` are the defaults a request may override."""
    limits = limits or Limits()
    if default_task is not None and default_task not in TASKS:
        raise ValueError(f"default_task={default_task!r}: known tasks: {', '.join(TASKS)}")
    name = model_name or os.path.basename(os.path.normpath(loaded.adapter_dir or loaded.model_dir)) or "pedgpt"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.worker = GenerationWorker(loaded, limits.max_pending)  # one generation thread per run
        try:
            yield
        finally:
            app.state.worker.close()

    app = FastAPI(title="pedgpt", docs_url=None, redoc_url=None, lifespan=lifespan)
    install_error_handlers(app)

    def authorised(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise APIError(401, "invalid or missing API key (send Authorization: Bearer <key>)", code="invalid_api_key")

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC, "index.html"))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model": name,
            "tasks": [{"id": t, "title": TASK_TITLES[t]} for t in TASKS],
            "default_task": default_task,
            "has_adapter": loaded.has_adapter,
            "disclaimer": DISCLAIMER,
            "limits": asdict(limits),
            "api_key_required": api_key is not None,
        }

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "pedgpt"}]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorised)])
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        job = parse_request(body, limits, settings, default_task)
        safety = safety_body(triage(job.messages))  # the whole conversation, before trimming and the model
        try:
            kept, dropped = trim_history(loaded, job.messages, job.system, job.settings.max_new_tokens)
        except ValueError as e:
            raise APIError(400, f"messages: {e}", param="messages", code="context_length_exceeded") from None
        job = ChatJob(kept, job.system, job.task, job.settings, job.stream, job.include_usage)
        done = Completion(name)
        deltas = request.app.state.worker.submit(job).deltas(request.is_disconnected)
        if job.stream:
            return StreamingResponse(
                _sse(done, job, deltas, safety, dropped, loaded),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        text = "".join([d async for d in deltas])
        usage = _usage(loaded, job, text)
        return JSONResponse(done.full(text, _finish_reason(job, usage), usage, safety, dropped))

    return app


def _usage(loaded: LoadedModel, job: ChatJob, text: str) -> dict[str, int]:
    prompt = prompt_tokens(loaded, job.messages, job.system)
    completion = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(job: ChatJob, usage: dict[str, int]) -> str:
    """``length`` when the answer re-encodes to the token budget (the answer's own tokens, so approximate)."""
    return "length" if usage["completion_tokens"] >= job.settings.max_new_tokens else "stop"


def _event(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _sse(
    done: Completion,
    job: ChatJob,
    deltas: AsyncIterator[str],
    safety: dict[str, Any],
    dropped: int,
    loaded: LoadedModel,
) -> AsyncIterator[str]:
    """Server-sent events: the safety chunk first, then text deltas, the finish chunk, usage, ``[DONE]``."""
    yield _event(done.first_chunk(safety, dropped))
    parts = []
    try:
        async for delta in deltas:
            parts.append(delta)
            yield _event(done.chunk(delta))
    except Exception as e:  # generation failed mid-stream: tell the client in OpenAI's error shape
        yield _event(APIError(500, f"generation failed: {type(e).__name__}: {e}").body())
        yield "data: [DONE]\n\n"
        return
    usage = _usage(loaded, job, "".join(parts))
    yield _event(done.chunk(None, _finish_reason(job, usage)))
    if job.include_usage:
        yield _event(done.usage_chunk(usage))
    yield "data: [DONE]\n\n"
