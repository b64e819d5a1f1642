"""A tiny chat model for the chat, API and browser tests, trained in-process to say known answers.

A random tiny model answers with noise and may stop at once; these tests need answers they can check, so
the model is fitted for a few seconds to three conversations: two short Chinese answers and a long one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import torch

from pedgpt.data.schema import Message
from pedgpt.models.exports import LoadedModel
from pedgpt.models.tokenizer import train_bpe_tokenizer

GREETING = ("你好", "你好！我是儿科助手，请说说孩子的情况。")
COUGH = ("宝宝咳嗽怎么办？", "多喝温水，注意观察精神和呼吸。")
LONG = ("一直说下去", "哈" * 150)  # the tokenizer never sees "哈": 3 byte tokens each
CONTEXT = 1024


def _sequences(tokenizer, template) -> list[list[int]]:
    out = []
    for user, answer in (GREETING, COUGH, LONG):
        out.append(template.encode(tokenizer, [Message("user", user), Message("assistant", answer)])["input_ids"])
    return out


def train_chat_model(seed: int = 0, steps: int = 120) -> LoadedModel:
    """Tokenizer and Llama (hidden 64, 2 layers, context 1024), fitted to the three conversations."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pedgpt.data.templates import get_template

    texts = [f"Human: {u}\n\nAssistant: {a}" for u, a in (GREETING, COUGH)] * 10
    tokenizer = train_bpe_tokenizer(texts + ["宝宝发烧了怎么办？先测量体温。"] * 10, vocab_size=320)
    template = get_template("human_assistant")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg)
    seqs = _sequences(tokenizer, template)
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s)] = torch.tensor(s)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return LoadedModel(model, tokenizer, template, model_dir="tiny-chat")


@contextlib.contextmanager
def slowed(model: torch.nn.Module, seconds: float) -> Iterator[None]:
    """Every forward of ``model`` takes at least ``seconds`` longer (so a test can act mid-generation)."""
    handle = model.register_forward_pre_hook(lambda module, args: time.sleep(seconds))
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    import uvicorn

    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so; without it every response
    # waits ~40 ms for a delayed ACK (Nagle), which would hide latency differences the load test measures
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
