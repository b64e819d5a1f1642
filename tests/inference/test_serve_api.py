"""The OpenAI-compatible API, driven by the ``openai`` client against the server running in-process."""

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import torch

from helpers.talk_model import COUGH, GREETING, LONG, serving, slowed, train_chat_model
from pedgpt.data.schema import TASKS, Message
from pedgpt.inference.generation import GenerationSettings, stream_generate
from pedgpt.inference.server import Limits, create_app
from pedgpt.models.exports import LoadedModel

URGENT = "宝宝2个月大，今天发烧38.5度"  # fever under 3 months: a red flag of pedgpt.inference.safety


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    return train_chat_model()


@pytest.fixture(scope="module")
def server(loaded):
    app = create_app(loaded, limits=Limits(max_message_chars=200, max_turns=5, max_new_tokens=1000, max_pending=4))
    with serving(app) as url:
        yield app, url


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[1] + "/v1", api_key="any-key-works", max_retries=0, timeout=60)


def user(text):
    return [{"role": "user", "content": text}]


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["tiny-chat"]


def test_completion_is_the_models_answer(client):
    r = client.chat.completions.create(model="tiny-chat", messages=user(COUGH[0]))
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == COUGH[1]
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.pedgpt_safety["urgent"] is False and r.pedgpt_safety["message"] == ""


def test_multi_turn_and_content_parts(client):
    messages = [
        {"role": "system", "content": "你是儿科助手。"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": GREETING[1]},
        {"role": "user", "content": [{"type": "text", "text": "宝宝"}, {"type": "text", "text": "咳嗽怎么办？"}]},
    ]
    r = client.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=60)
    assert isinstance(r.choices[0].message.content, str) and "\ufffd" not in r.choices[0].message.content


def test_stream_yields_deltas_and_safety_first(client):
    chunks = list(
        client.chat.completions.create(
            model="tiny-chat", messages=user(GREETING[0]), stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].pedgpt_safety["urgent"] is False
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 3  # streamed piece by piece
    assert "".join(deltas) == GREETING[1]
    assert not any("\ufffd" in d for d in deltas)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_stream_ends_with_done(server):
    with httpx.stream(
        "POST",
        server[1] + "/v1/chat/completions",
        timeout=60,
        json={"model": "x", "messages": user(COUGH[0]), "stream": True},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    first = json.loads(events[0][6:])
    assert first["object"] == "chat.completion.chunk" and "pedgpt_safety" in first


def test_urgent_guidance_travels_beside_the_answer(client):
    r = client.chat.completions.create(model="tiny-chat", messages=user(URGENT), max_tokens=30)
    s = r.pedgpt_safety
    assert s["urgent"] is True and "infant_fever" in s["categories"] and "120" in s["message"]
    assert s["message"] not in r.choices[0].message.content  # content is the model's own words
    stream = client.chat.completions.create(model="tiny-chat", messages=user(URGENT), max_tokens=30, stream=True)
    first = next(iter(stream))
    assert first.pedgpt_safety["urgent"] is True  # before any model text
    assert not first.choices[0].delta.content
    stream.close()


def test_urgency_read_from_earlier_turns(client):
    messages = [
        {"role": "user", "content": "我家宝宝2个月大"},
        {"role": "assistant", "content": "好的。"},
        {"role": "user", "content": "她今天发烧38.6度"},
    ]
    r = client.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=5)
    assert r.pedgpt_safety["urgent"] is True


def _error(server, body, status=400):
    r = httpx.post(server[1] + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"model": "x"}, "messages", "missing"),
        ({"messages": []}, "messages", "too_short"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "literal_error"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "messages",
            "invalid_value",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": "late"},
                    {"role": "user", "content": "b"},
                ]
            },
            "messages[1].role",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0]",
            "unsupported_content",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature", "less_than_equal"),
        ({"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, "top_p", "greater_than"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens", "greater_than_equal"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n", "less_than_equal"),
        ({"messages": [{"role": "user", "content": "hi"}], "stop": ["\n"]}, "stop", "unsupported_parameter"),
        ({"messages": [{"role": "user", "content": "hi"}], "task": "surgery"}, "task", "invalid_value"),
    ],
)
def test_bad_input_is_400_with_openai_error(server, body, param, code):
    err = _error(server, body)
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)


def test_invalid_json_is_400(server):
    r = httpx.post(
        server[1] + "/v1/chat/completions",
        content=b'{"messages": [',
        timeout=60,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_openai_client_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny-chat", messages=user("hi"), temperature=2.5)
    assert e.value.status_code == 400 and e.value.body["param"] == "temperature"


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"messages": [{"role": "user", "content": "哈" * 201}]}, "messages[0].content", "message_too_long"),
        (
            {
                "messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}] * 3
                + [{"role": "user", "content": "ok"}]
            },
            "messages",
            "too_many_turns",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1001}, "max_tokens", "max_tokens_too_large"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 5000},
            "max_completion_tokens",
            "max_tokens_too_large",
        ),
    ],
)
def test_limits(server, body, param, code):
    err = _error(server, body)
    assert (err["param"], err["code"]) == (param, code)


def test_limits_at_the_edge_are_accepted(client):
    five = [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}] * 2 + user("哈" * 200)
    r = client.chat.completions.create(model="tiny-chat", messages=five, max_tokens=3)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_max_tokens_bounds_the_answer(client):
    r = client.chat.completions.create(model="tiny-chat", messages=user(LONG[0]), max_completion_tokens=12)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "哈" * 4  # 3 byte tokens per character


def test_context_overflow_is_400(loaded):
    app = create_app(loaded, limits=Limits(max_message_chars=10**6, max_new_tokens=100))
    with serving(app) as url:
        r = httpx.post(url + "/v1/chat/completions", timeout=60, json={"messages": user("哈" * 400)})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_api_key_enforced_when_configured(loaded):
    app = create_app(loaded, api_key="sekrit")
    with serving(app) as url:
        bad = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            bad.chat.completions.create(model="tiny-chat", messages=user(COUGH[0]))
        assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        assert httpx.get(url + "/v1/models").status_code == 401
        good = openai.OpenAI(base_url=url + "/v1", api_key="sekrit", max_retries=0)
        assert (
            good.chat.completions.create(model="tiny-chat", messages=user(COUGH[0])).choices[0].message.content
            == COUGH[1]
        )


# -- concurrency ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moe_loaded(loaded):
    """The chat model with a task-routed MoE-LoRA whose experts differ, so the task changes the answer."""
    from pedgpt.adapters import adapter_modules, inject_moe_lora

    model = inject_moe_lora(
        copy.deepcopy(loaded.model),
        ["q_proj", "v_proj", "o_proj", "down_proj"],
        rank=4,
        alpha=8,
        num_universal=0,
        num_specific=len(TASKS),
        router="task",
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, m in adapter_modules(model):
            m.moe_lora_B.copy_(torch.randn(m.moe_lora_B.shape, generator=g) * 0.15)
            m.moe_lora_task_logits.copy_(torch.eye(len(TASKS)) * 20)  # task t -> expert t
    return LoadedModel(model.eval(), loaded.tokenizer, loaded.template, "tiny-moe", adapter_dir="tiny-moe-adapter")


def test_concurrent_requests_with_different_tasks_do_not_mix(moe_loaded):
    settings = GenerationSettings(max_new_tokens=40)
    prompts = [(COUGH[0], t) for t in TASKS] + [(GREETING[0], t) for t in TASKS]
    expected = {
        (p, t): "".join(stream_generate(moe_loaded, [Message("user", p)], settings, task=t)) for p, t in prompts
    }
    assert len({expected[(COUGH[0], t)] for t in TASKS}) >= 3  # the task really changes the answer
    app = create_app(moe_loaded, limits=Limits(max_pending=len(prompts)))
    with serving(app) as url, slowed(moe_loaded.model, 0.002):
        client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=120)
        start = threading.Barrier(len(prompts))

        def ask(pt):
            start.wait()
            if pt[1] in ("medkqa", "consult"):  # half of them streamed
                stream = client.chat.completions.create(
                    model="m", messages=user(pt[0]), max_tokens=40, stream=True, extra_body={"task": pt[1]}
                )
                return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            r = client.chat.completions.create(
                model="m", messages=user(pt[0]), max_tokens=40, extra_body={"task": pt[1]}
            )
            return r.choices[0].message.content

        with ThreadPoolExecutor(len(prompts)) as pool:
            got = dict(zip(prompts, pool.map(ask, prompts)))
        records = list(app.state.worker.records)
    assert got == expected
    assert sorted(r.task for r in records) == sorted(t for _, t in prompts)


def test_adapter_server_defaults_to_a_task(moe_loaded):
    from pedgpt.inference.conversation import task_or_default

    assert task_or_default(moe_loaded, None) == "consult"
    app = create_app(moe_loaded, default_task="consult")
    with serving(app) as url:
        r = httpx.post(url + "/v1/chat/completions", timeout=60, json={"messages": user(COUGH[0]), "max_tokens": 40})
    expected = "".join(
        stream_generate(moe_loaded, [Message("user", COUGH[0])], GenerationSettings(max_new_tokens=40), task="consult")
    )
    assert r.json()["choices"][0]["message"]["content"] == expected


# -- cancellation and the queue --------------------------------------------------------------------------
def _wait_for_record(app, n, timeout=20.0):
    deadline = time.monotonic() + timeout
    while len(app.state.worker.records) < n:
        assert time.monotonic() < deadline, "the generation job did not finish"
        time.sleep(0.02)
    return app.state.worker.records[n - 1]


def test_generation_stops_when_the_client_disconnects(loaded):
    app = create_app(loaded)
    with serving(app) as url, slowed(loaded.model, 0.01):  # the whole answer would take >= 450 x 10 ms
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            timeout=60,
            json={"messages": user(LONG[0]), "max_tokens": 1000, "stream": True},
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and '"content": "哈' in line:
                    break
        closed = time.monotonic()
        rec = _wait_for_record(app, 1)
        stopped_after = time.monotonic() - closed
        assert rec.started and rec.cancelled
        assert 0 < rec.text.count("哈") < 150
        assert stopped_after < 2.0
        # the worker serves the next request normally
        r = httpx.post(url + "/v1/chat/completions", timeout=60, json={"messages": user(COUGH[0])})
        assert r.json()["choices"][0]["message"]["content"] == COUGH[1]


def test_non_stream_request_cancelled_on_disconnect(loaded):
    app = create_app(loaded)
    with serving(app) as url, slowed(loaded.model, 0.01):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", timeout=0.5, json={"messages": user(LONG[0]), "max_tokens": 1000})
        rec = _wait_for_record(app, 1, timeout=3.0)
        assert rec.cancelled and rec.text.count("哈") < 150


def test_full_queue_is_429(loaded):
    app = create_app(loaded, limits=Limits(max_pending=1))
    with serving(app) as url, slowed(loaded.model, 0.01):
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            timeout=60,
            json={"messages": user(LONG[0]), "max_tokens": 1000, "stream": True},
        ) as first:
            lines = first.iter_lines()  # kept referenced: a dropped iterator closes the connection
            next(lines)
            r = httpx.post(url + "/v1/chat/completions", timeout=60, json={"messages": user(COUGH[0])})
            assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
        _wait_for_record(app, 1)
        ok = httpx.post(url + "/v1/chat/completions", timeout=60, json={"messages": user(COUGH[0])})
        assert ok.status_code == 200
