"""The optional rewrite step against a local OpenAI-compatible stub server on 127.0.0.1."""

import pytest
from omegaconf import OmegaConf

from helpers.stub_openai import ChatStub, serving
from pedgpt.data.corpus.rewrite import chat_completion, rewrite_records
from pedgpt.data.schema import Instruction, Message


class Stub(ChatStub):
    def reply(self, body):
        return "润色后：" + body["messages"][-1]["content"].split("原回答：\n")[-1]


@pytest.fixture()
def server():
    with serving(Stub) as url:
        yield url


def test_chat_completion_protocol(server):
    out = chat_completion(server, "stub-model", [{"role": "user", "content": "原回答：\n你好"}], api_key="k1")
    assert out == "润色后：你好"
    (req,) = Stub.seen
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k1"
    assert req["body"]["model"] == "stub-model" and req["body"]["temperature"] == 0


def test_rewrite_only_selected_tasks(server, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "secret")
    cfg = OmegaConf.create(
        {"base_url": server, "model": "stub-model", "api_key_env": "STUB_KEY", "tasks": ["medkqa"], "timeout_s": 5}
    )
    a = Instruction(
        messages=[Message("user", "小儿肺炎的病因？"), Message("assistant", "多由感染引起。")],
        task="medkqa",
        id="a",
        split="train",
    )
    b = Instruction(messages=[Message("user", "讲个笑话"), Message("assistant", "好的。")], task="general", id="b")
    new_a, new_b = rewrite_records([a, b], cfg)
    assert new_a.response == "润色后：多由感染引起。" and new_a.id == "a" and new_a.split == "train"
    assert new_a.meta["rewritten"] == "stub-model" and new_b is b
    assert len(Stub.seen) == 1 and Stub.seen[0]["auth"] == "Bearer secret"


def test_unreachable_endpoint_is_one_line_error():
    with pytest.raises(RuntimeError, match=r"rewrite: POST http://127.0.0.1:9/v1/chat/completions failed"):
        chat_completion("http://127.0.0.1:9/v1", "m", [{"role": "user", "content": "x"}], timeout=2)
