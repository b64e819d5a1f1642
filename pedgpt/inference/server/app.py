"""The FastAPI app: the web page, ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /info``.

Triage (:func:`pedgpt.inference.safety.triage` over the whole conversation) runs before the model on every request.
Its result travels beside the answer, never inside it: ``pedgpt_safety`` on the completion, or on the first
stream chunk — so a client (the web page) can show the emergency guidance before any model text arrives,
while ``content`` stays the model's own words for evaluation.

Nothing that takes time runs on the event loop: the body is read under ``max_body_bytes``, then parsing,
the limit checks, triage and trimming the history run on a thread (one at a time), generation on the worker's
thread, and counting the answer's tokens on a thread again — so ``/info`` and other requests keep answering
while a maximal request is processed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from pedgpt.data.schema import TASK_TITLES, TASKS
from pedgpt.inference.conversation import prompt_tokens, trim_history
from pedgpt.inference.generation import PRESETS, GenerationSettings
from pedgpt.inference.safety import DISCLAIMER, triage
from pedgpt.inference.server.body import read_body
from pedgpt.inference.server.errors import APIError, install_error_handlers
from pedgpt.inference.server.hosts import HostCheck
from pedgpt.inference.server.limits import Limits
from pedgpt.inference.server.protocol import ChatJob, Completion, parse_body, parse_request, safety_body
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
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """An app serving ``loaded``. With ``api_key`` set, ``/v1/*`` needs ``Authorization: Bearer <key>``
    (401 otherwise); without, any key is accepted, and a request whose ``Host`` does not name this server
    (localhost, a loopback address, the address it listens on, or one of ``allowed_hosts``) is refused with
    400 ``invalid_host`` (DNS rebinding). ``settings`` are the defaults a request may override."""
    limits = limits or Limits()
    if default_task is not None and default_task not in TASKS:
        raise ValueError(f"default_task={default_task!r}: known tasks: {', '.join(TASKS)}")
    name = model_name or os.path.basename(os.path.normpath(loaded.adapter_dir or loaded.model_dir)) or "pedgpt"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.worker = GenerationWorker(loaded, limits.max_pending)  # one generation thread per run
        app.state.cpu_slot = anyio.CapacityLimiter(1)  # parse + triage + trim, one request at a time
        try:
            yield
        finally:
            app.state.worker.close()

    app = FastAPI(title="pedgpt", docs_url=None, redoc_url=None, lifespan=lifespan)
    install_error_handlers(app)
    if api_key is None:
        app.add_middleware(HostCheck, allowed_hosts=tuple(allowed_hosts))

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

    def prepare(body: bytes) -> tuple[ChatJob, dict[str, Any], int]:
        """Everything before generation (runs on a thread): parse and check, triage, trim to the context."""
        job = parse_request(parse_body(body), limits, settings, default_task)
        safety = safety_body(triage(job.messages))  # the whole conversation, before trimming and the model
        try:
            kept, dropped = trim_history(loaded, job.messages, job.system, job.settings.max_new_tokens)
        except ValueError as e:
            raise APIError(400, f"messages: {e}", param="messages", code="context_length_exceeded") from None
        return ChatJob(kept, job.system, job.task, job.settings, job.stream, job.include_usage), safety, dropped

    @app.post("/v1/chat/completions", dependencies=[Depends(authorised)])
    async def chat_completions(request: Request):
        worker, slot = request.app.state.worker, request.app.state.cpu_slot
        worker.check_room()  # a full queue is refused before the body is read
        body = await read_body(request, limits.max_body_bytes)
        job, safety, dropped = await anyio.to_thread.run_sync(prepare, body, limiter=slot)
        done = Completion(name)
        deltas = worker.submit(job).deltas(request.is_disconnected)
        if job.stream:
            return StreamingResponse(
                _sse(done, job, deltas, safety, dropped, loaded, slot),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        text = "".join([d async for d in deltas])
        usage = await anyio.to_thread.run_sync(_usage, loaded, job, text, limiter=slot)
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
    slot: anyio.CapacityLimiter,
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
    usage = await anyio.to_thread.run_sync(_usage, loaded, job, "".join(parts), limiter=slot)
    yield _event(done.chunk(None, _finish_reason(job, usage)))
    if job.include_usage:
        yield _event(done.usage_chunk(usage))
    yield "data: [DONE]\n\n"
