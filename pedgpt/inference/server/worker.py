"""One generation thread serving all requests in arrival order.

Requests never share model state: each job carries its own conversation, settings and task, and
:func:`pedgpt.inference.generation.stream_generate` sets the adapter's task ids for that call only, on the one thread
that runs the model. A job is cancelled through its own event, polled by ``should_stop`` every token.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from pedgpt.inference.generation import stream_generate
from pedgpt.inference.server.errors import APIError
from pedgpt.inference.server.protocol import ChatJob
from pedgpt.models.exports import LoadedModel

_END = object()


@dataclass
class JobRecord:
    """What happened to a finished job (kept for the last 64, newest last)."""

    task: str | None
    deltas: int = 0
    cancelled: bool = False
    started: bool = False
    error: str | None = None
    text: str = field(default="", repr=False)


@dataclass
class _Job:
    chat: ChatJob
    cancel: threading.Event
    emit: Callable[[object], None]
    record: JobRecord


class GenerationWorker:
    def __init__(self, loaded: LoadedModel, max_pending: int) -> None:
        self.loaded = loaded
        self.max_pending = max_pending
        self.records: deque[JobRecord] = deque(maxlen=64)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pedgpt-generation", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            rec = job.record
            try:
                if job.cancel.is_set():
                    rec.cancelled = True
                    continue
                rec.started = True
                c = job.chat
                for delta in stream_generate(
                    self.loaded, c.messages, c.settings, system=c.system, task=c.task, should_stop=job.cancel.is_set
                ):
                    rec.deltas += 1
                    rec.text += delta
                    job.emit(delta)
                rec.cancelled = job.cancel.is_set()
                job.emit(_END)
            except Exception as e:  # reported to the request that caused it; the worker keeps serving
                rec.error = f"{type(e).__name__}: {e}"
                job.emit(e)
            finally:
                with self._lock:
                    self._pending -= 1
                self.records.append(rec)

    def _busy(self) -> APIError:
        return APIError(
            429, f"the server is busy ({self._pending} requests queued or running); retry later", code="queue_full"
        )

    def check_room(self) -> None:
        """Raise :class:`APIError` 429 now when ``max_pending`` requests are queued or running (a cheap early
        refusal, before a request's body is read; :meth:`submit` checks again)."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise self._busy()

    def submit(self, chat: ChatJob) -> Ticket:
        """Queue ``chat``; raises :class:`APIError` 429 when ``max_pending`` requests are queued or running."""
        ticket = Ticket(chat)
        with self._lock:
            if self._pending >= self.max_pending:
                raise self._busy()
            self._pending += 1
        self._jobs.put(ticket.job)
        return ticket


class Ticket:
    """A queued job and the event-loop side of its output."""

    def __init__(self, chat: ChatJob) -> None:
        self._loop = asyncio.get_running_loop()
        self._out: asyncio.Queue = asyncio.Queue()
        self.job = _Job(chat, threading.Event(), self._emit, JobRecord(chat.task))

    def _emit(self, item: object) -> None:  # called on the worker thread
        try:
            self._loop.call_soon_threadsafe(self._out.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            pass

    async def deltas(self, disconnected: Callable[[], Awaitable[bool]], poll_s: float = 0.1) -> AsyncIterator[str]:
        """Yield the job's text deltas. Every ``poll_s``, ``disconnected()`` is asked; once it is true — or when
        the consumer stops iterating — the job is cancelled (its ``should_stop`` sees it at the next token)."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + poll_s
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self._out.get(), max(next_poll - loop.time(), 0.0))
                except asyncio.TimeoutError:
                    item = None
                if loop.time() >= next_poll:
                    if await disconnected():
                        return
                    next_poll = loop.time() + poll_s
                if item is None:
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.job.cancel.set()
