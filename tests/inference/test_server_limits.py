"""The server's request limits seen from clients: body size, turn count (system messages included), ``Host``.

Driven with the ``openai`` client where it can express the request, and with ``httpx`` for what it cannot (a
declared body size, a chunked body, a foreign ``Host`` header). Every error is OpenAI-shaped and names the field.
"""

from __future__ import annotations

import json
import statistics
import time

import httpx
import openai
import pytest
import torch

from helpers.talk_model import COUGH, serving, train_chat_model
from pedgpt import serve
from pedgpt.inference.server import Limits, create_app
from pedgpt.inference.server.hosts import host_name, is_local_name

BODY_LIMIT = 100_000
TIMEOUT = 60


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return train_chat_model()


@pytest.fixture(scope="module")
def url(loaded):
    limits = Limits(max_body_bytes=BODY_LIMIT, max_turns=5, max_message_chars=100_000, max_new_tokens=50)
    with serving(create_app(loaded, limits=limits)) as url:
        yield url


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0, timeout=TIMEOUT)


# -- body size -----------------------------------------------------------------------------------------
def test_too_large_body_is_413_through_the_openai_client(client):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="m", messages=user("哈" * BODY_LIMIT))  # 3 bytes a character
    assert e.value.status_code == 413
    assert (e.value.body["code"], e.value.body["param"]) == ("request_too_large", "body")
    assert str(BODY_LIMIT) in e.value.body["message"] and "max_body_bytes" in e.value.body["message"]


def test_body_just_under_the_limit_is_served(client, url):
    """Padded with an unknown field (ignored, as OpenAI-compatible servers do) so that the context still fits."""
    pad = {"pedgpt_padding": "x" * (BODY_LIMIT - 200)}
    body = {"model": "m", "messages": user(COUGH[0]), "max_tokens": 3, **pad}
    assert BODY_LIMIT - 200 < len(httpx.Request("POST", url, json=body).content) <= BODY_LIMIT
    r = client.chat.completions.create(model="m", messages=user(COUGH[0]), max_tokens=3, extra_body=pad)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_declared_huge_body_is_refused_before_it_is_read(url):
    """A 50 MB body: refused from its Content-Length; nothing is parsed (the answer names the declared size)."""
    body = b'{"messages": [{"role": "user", "content": "' + b"a" * 50_000_000 + b'"}]}'
    r = httpx.post(url + "/v1/chat/completions", content=body, timeout=TIMEOUT)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert str(len(body)) in r.json()["error"]["message"]


def test_chunked_body_is_counted_while_it_is_read(url):
    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(BODY_LIMIT // 1000 + 1):
            yield b"a" * 1000
        yield b'"}]}'

    r = httpx.post(url + "/v1/chat/completions", content=chunks(), timeout=TIMEOUT)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    "body, code",
    [(b"[]", "model_type"), (b"\xff\xfe not utf-8", "json_invalid"), (b"", "json_invalid")],
    ids=["not_an_object", "not_utf8", "empty"],
)
def test_body_that_is_not_a_request_is_400(url, body, code):
    r = httpx.post(url + "/v1/chat/completions", content=body, timeout=TIMEOUT)
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("invalid_request_error", code) and err["message"]


# -- turns ---------------------------------------------------------------------------------------------
def test_system_messages_count_toward_the_turn_limit(client):
    messages = [{"role": "system", "content": "你是儿科助手。"}] * 5 + user(COUGH[0])  # 6 messages, limit 5
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="m", messages=messages)
    assert (e.value.body["param"], e.value.body["code"]) == ("messages", "too_many_turns")
    assert "6 messages" in e.value.body["message"] and "5" in e.value.body["message"]


def _rejection_time(url, messages) -> float:
    body = json.dumps({"model": "m", "messages": messages}).encode()  # encoded once: the server's time is timed
    times = []
    with httpx.Client(timeout=TIMEOUT) as http:
        for _ in range(5):
            start = time.perf_counter()
            r = http.post(url + "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
            times.append(time.perf_counter() - start)
            assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_turns"
    return statistics.median(times)


def test_thousands_of_system_messages_are_refused_as_fast_as_a_few(url):
    """2,000 system messages used to pass the turn limit and take a minute; now they are counted first. Timed
    as a ratio to refusing 6 messages (the body is bigger, so parsing it costs a little more), never absolutely."""
    few = [{"role": "system", "content": "系统"}] * 5 + user("hi")
    many = [{"role": "system", "content": "系统"}] * 2000 + user("hi")
    _rejection_time(url, few)  # warm up
    ratio = _rejection_time(url, many) / _rejection_time(url, few)
    assert ratio < 20, f"2,000 system messages took {ratio:.1f}x as long to refuse as 6"


# -- Host ----------------------------------------------------------------------------------------------
def test_foreign_host_is_refused_without_an_api_key(url):
    port = url.rsplit(":", 1)[1]
    for path in ("/info", "/v1/models", "/"):
        r = httpx.get(url + path, headers={"Host": f"rebind.attacker.example:{port}"}, timeout=TIMEOUT)
        assert r.status_code == 400, path
        err = r.json()["error"]
        assert (err["param"], err["code"]) == ("Host", "invalid_host") and "rebind.attacker.example" in err["message"]
    foreign = openai.OpenAI(
        base_url=url + "/v1", api_key="any", max_retries=0, default_headers={"Host": "attacker.example"}
    )
    with pytest.raises(openai.BadRequestError) as e:
        foreign.chat.completions.create(model="m", messages=user(COUGH[0]))
    assert e.value.body["code"] == "invalid_host"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "127.0.0.1:{port}", "localhost:{port}"])
def test_local_hosts_are_accepted(url, host):
    port = url.rsplit(":", 1)[1]
    r = httpx.get(url + "/info", headers={"Host": host.format(port=port)}, timeout=TIMEOUT)
    assert r.status_code == 200


def test_allowed_hosts_and_api_key(loaded):
    with serving(create_app(loaded, allowed_hosts=["pedgpt.lan"])) as url:
        assert httpx.get(url + "/info", headers={"Host": "pedgpt.lan:8000"}, timeout=TIMEOUT).status_code == 200
        assert httpx.get(url + "/info", headers={"Host": "other.lan"}, timeout=TIMEOUT).status_code == 400
    with serving(create_app(loaded, api_key="sekrit")) as url:  # the key protects; any Host is accepted
        keyed = openai.OpenAI(
            base_url=url + "/v1", api_key="sekrit", max_retries=0, default_headers={"Host": "pedgpt.example.org"}
        )
        assert [m.id for m in keyed.models.list()] == ["tiny-chat"]


@pytest.mark.parametrize(
    "header, name, local",
    [
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("[::1]:8000", "::1", True),
        ("[::1]", "::1", True),
        ("LocalHost.", "localhost", True),
        ("app.localhost:80", "app.localhost", True),
        ("127.0.0.2", "127.0.0.2", True),
        ("evil.example:8000", "evil.example", False),
        ("localhost.evil.example", "localhost.evil.example", False),
        ("192.168.1.5:8000", "192.168.1.5", False),
    ],
)
def test_host_names(header, name, local):
    assert host_name(header) == name
    assert is_local_name(name) is local


# -- the command line ----------------------------------------------------------------------------------
def test_serve_cli_passes_body_limit_and_allowed_hosts(monkeypatch):
    seen = {}
    monkeypatch.setattr(serve, "serve", lambda *a, **kw: seen.update(kw))
    assert serve.main(["model=x", "max_body_bytes=12345", "allowed_hosts=a.lan, b.lan"]) == 0
    assert seen["limits"].max_body_bytes == 12345 and seen["allowed_hosts"] == ["a.lan", "b.lan"]


def test_serve_cli_bad_body_limit_is_one_line(capsys):
    assert serve.main(["model=x", "max_body_bytes=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "pedgpt.serve: limits.max_body_bytes: must be a positive integer, got 0"
