"""The server stays responsive: while one maximal request is processed, ``GET /info`` answers about as fast as idle.

The real server (uvicorn on 127.0.0.1, a free port) with the default :class:`Limits`. The maximal request holds
``max_turns`` messages (a system message, then user / assistant turns) of ``max_message_chars`` characters each,
chosen to be the slowest text for triage, and asks for a long streamed answer from a slowed model — so it spends
time in every phase: reading the body, parsing, triage, trimming the history, generation. Meanwhile ``/info``
is polled a bounded number of times, every request with a timeout. The assertion is a ratio to the idle
latency measured the same way just before, never an absolute duration. Before the fix, triage ran on the event
loop and one such conversation held ``/info`` for about a minute.
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest
import torch

from helpers.talk_model import LONG, serving, slowed, train_chat_model
from pedgpt.inference.server import Limits, create_app

IDLE_POLLS = 20  # /info requests on the idle server
MAX_POLLS = 300  # at most this many while the maximal request runs (its end stops the polling sooner)
PAUSE = 0.05  # seconds between polls
TIMEOUT = 30.0  # seconds, on every request of this test
#: /info under load may take this many times its idle median: the event loop is shared with a thread doing
#: triage and one generating (they contend for the GIL), never blocked by them. Blocked, it was ~10,000x.
MAX_SLOWDOWN = 25.0
SLOW_TEXT = "宝宝发烧咳嗽，没有抽搐，上次烧到38.5度，"  # many fever words, temperatures, negations and clauses


def _maximal_messages(limits: Limits) -> list[dict[str, str]]:
    """``max_turns`` messages: a system message, then user / assistant turns of ``max_message_chars`` each; the
    system message and the last user turn are short, because the tiny model's context must hold them."""
    full = (SLOW_TEXT * (limits.max_message_chars // len(SLOW_TEXT) + 1))[: limits.max_message_chars]
    messages = [{"role": "system", "content": "你是儿科助手。"}]
    while len(messages) < limits.max_turns - 1:
        messages.append({"role": "user" if len(messages) % 2 == 1 else "assistant", "content": full})
    messages.append({"role": "user", "content": LONG[0]})  # the model's context holds only a short last turn
    assert len(messages) == limits.max_turns and messages[-2]["role"] == "assistant"
    return messages


def _info(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    r = client.get(url + "/info", timeout=TIMEOUT)
    assert r.status_code == 200
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return train_chat_model()


def test_info_answers_while_a_maximal_request_is_processed(loaded):
    limits = Limits()
    messages = _maximal_messages(limits)
    body_bytes = len(httpx.Request("POST", "http://x", json={"messages": messages}).content)
    assert body_bytes <= limits.max_body_bytes  # maximal, yet within every limit
    app = create_app(loaded, limits=limits)
    state: dict[str, float | int] = {}
    with serving(app) as url, slowed(loaded.model, 0.01), httpx.Client() as client:
        for _ in range(3):
            _info(client, url)  # warm the connection and the route
        idle = []
        for _ in range(IDLE_POLLS):
            idle.append(_info(client, url))
            time.sleep(PAUSE)

        def maximal() -> None:
            with httpx.stream(
                "POST",
                url + "/v1/chat/completions",
                json={"messages": messages, "max_tokens": 200, "stream": True},
                timeout=TIMEOUT,
            ) as r:
                state["status"] = r.status_code
                events = 0
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events += 1
                        state.setdefault("first_event", time.perf_counter())  # preparation is over
                state["events"] = events
            state["done"] = time.perf_counter()

        worker = threading.Thread(target=maximal)
        worker.start()
        preparing, generating = [], []
        for _ in range(MAX_POLLS):
            if "done" in state:
                break
            time.sleep(PAUSE)
            sent = time.perf_counter()
            latency = _info(client, url)
            (generating if state.get("first_event", float("inf")) < sent else preparing).append(latency)
        worker.join(TIMEOUT)
    assert not worker.is_alive() and state["status"] == 200 and state["events"] > 10
    idle_median = statistics.median(idle)
    phases = {name: xs for name, xs in (("preparing", preparing), ("generating", generating)) if xs}
    report = {name: statistics.median(xs) for name, xs in phases.items()}
    print(
        f"\n/info idle median {idle_median * 1e3:.2f} ms; under load: "
        + ", ".join(
            f"{k} median {report[k] * 1e3:.2f} ms ({len(xs)} polls, max {max(xs) * 1e3:.1f} ms)"
            for k, xs in phases.items()
        )
        + f"; body {body_bytes} bytes"
    )
    for phase, median in report.items():
        assert median <= MAX_SLOWDOWN * idle_median, (
            f"/info median {median * 1e3:.1f} ms while {phase} vs {idle_median * 1e3:.1f} ms idle"
        )
    assert len(preparing) >= 5 and len(generating) >= 5, "the maximal request was too quick to load the server"
