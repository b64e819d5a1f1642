"""Batched and streamed generation: batched == one-by-one greedy, left padding, stop strings, streaming, cancel."""

import pytest
import torch

from pedgpt.data.schema import Message
from pedgpt.data.templates import get_template
from pedgpt.inference.generation import (
    PRESETS,
    GenerationSettings,
    TextStream,
    cut_at_stop,
    generate_batch,
    stop_prefix_len,
    stream_generate,
)
from pedgpt.models.exports import LoadedModel

TEMPLATE = get_template("human_assistant")
PROMPTS = [
    "宝宝发烧了怎么办？",
    "孩子咳嗽",
    "手足口病多见于五岁以下儿童吗？口腔和手足出现疱疹要注意什么？",
    "咳嗽",
    "发烧三天了，精神还好，需要去医院吗？",
    "体温",
]
# What the trained fixture model learns to say (睡眠 is not in the tokenizer's training text, so its
# characters are split into byte tokens; the second answer runs on into a new "Human:" turn).
MEMORISED = {"宝宝发烧了怎么办？": "先测量体温，保证睡眠。", "孩子咳嗽": "建议观察精神状态。\nHuman: 还要注意什么"}


def user(text):
    return [Message("user", text)]


@pytest.fixture
def random_lm(tiny_llama, tiny_tokenizer):
    return LoadedModel(tiny_llama(vocab=len(tiny_tokenizer)), tiny_tokenizer, TEMPLATE, "<memory>")


@pytest.fixture(scope="module")
def trained_lm(tiny_tokenizer):
    """A tiny Llama overfit on the two MEMORISED conversations (≈2 s)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pedgpt.data.collate import collate_padded

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    model = LlamaForCausalLM(cfg)
    examples = [
        TEMPLATE.encode(tiny_tokenizer, [Message("user", q), Message("assistant", a)]) for q, a in MEMORISED.items()
    ]
    batch = collate_padded(examples, tiny_tokenizer.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(120):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    return LoadedModel(model.eval(), tiny_tokenizer, TEMPLATE, "<memory>")


def hf_greedy(lm, prompt, max_new_tokens):
    """Reference: transformers' own generate, one prompt at a time."""
    ids = TEMPLATE.encode(lm.tokenizer, user(prompt), add_generation_prompt=True)["input_ids"]
    out = lm.model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=lm.tokenizer.eos_token_id,
        pad_token_id=lm.tokenizer.pad_token_id,
    )[0, len(ids) :].tolist()
    if lm.tokenizer.eos_token_id in out:
        out = out[: out.index(lm.tokenizer.eos_token_id)]
    text = lm.tokenizer.decode(out, skip_special_tokens=True)
    for stop in TEMPLATE.stop_strings:
        text = text.split(stop)[0]
    return text.strip()


def test_batched_greedy_equals_one_by_one_and_transformers_generate(random_lm):
    s = GenerationSettings(max_new_tokens=12)
    batched = generate_batch(random_lm, [user(p) for p in PROMPTS], s, batch_size=4)
    alone = [generate_batch(random_lm, [user(p)], s, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone
    assert alone == [hf_greedy(random_lm, p, 12) for p in PROMPTS]
    assert len(set(batched)) > 1  # not a degenerate model


def test_left_padding_keeps_short_prompt_answer(random_lm):
    """A 1-token-user-turn prompt padded next to a long one answers as it does alone (positions, mask)."""
    s = GenerationSettings(max_new_tokens=10)
    short, long = user("体温"), user("手足口病多见于五岁以下儿童，口腔和手足出现疱疹，发烧咳嗽怎么办？" * 3)
    pair = generate_batch(random_lm, [short, long], s, batch_size=2)
    assert pair[0] == generate_batch(random_lm, [short], s)[0]
    assert pair[1] == generate_batch(random_lm, [long], s)[0]


def test_stop_string_ends_answer_and_is_not_emitted(trained_lm):
    out = generate_batch(trained_lm, [user(q) for q in MEMORISED], GenerationSettings(max_new_tokens=40))
    assert out == ["先测量体温，保证睡眠。", "建议观察精神状态。"]


def test_stop_helpers():
    assert cut_at_stop("好的。\nHuman: 再问", ("\nHuman:", "Human:")) == ("好的。", True)
    assert cut_at_stop("好的。", ("Human:",)) == ("好的。", False)
    assert stop_prefix_len("好的。\nHum", ("\nHuman:", "Human:")) == 4
    assert stop_prefix_len("好的。", ("\nHuman:",)) == 0


def test_text_stream_holds_back_partial_characters(tiny_tokenizer):
    text = "先测量体温，保证睡眠。"
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    partial = [tiny_tokenizer.decode(ids[:k]) for k in range(1, len(ids))]
    assert any(p.endswith("\ufffd") for p in partial)  # the test really splits a character
    stream = TextStream(tiny_tokenizer, ())
    deltas = [stream.push(t) for t in ids] + [stream.finish()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_stream_equals_batch_and_never_shows_replacement_chars(trained_lm):
    for q in MEMORISED:
        deltas = list(stream_generate(trained_lm, user(q), GenerationSettings(max_new_tokens=40)))
        assert all("\ufffd" not in d for d in deltas)
        assert len(deltas) > 1
        assert "".join(deltas) == generate_batch(trained_lm, [user(q)], GenerationSettings(max_new_tokens=40))[0]
    assert "".join(stream_generate(trained_lm, user("孩子咳嗽"))) == "建议观察精神状态。"


def test_stream_cancellation_stops_decoding(trained_lm):
    calls, forwards = [], []
    handle = trained_lm.model.register_forward_hook(lambda *a: forwards.append(1))
    try:
        deltas = list(
            stream_generate(
                trained_lm,
                user("孩子咳嗽"),
                GenerationSettings(max_new_tokens=40),
                should_stop=lambda: calls.append(1) or len(calls) > 2,
            )
        )
    finally:
        handle.remove()
    assert len(forwards) == 2  # prefill + one decoding step, then the stop request ends the loop
    assert "建议观察精神状态。".startswith("".join(deltas))


def test_seeded_sampling_is_reproducible_and_batch_independent(random_lm):
    s = GenerationSettings(max_new_tokens=15, do_sample=True, temperature=1.5, top_k=50, top_p=0.95, seed=7)
    convs = [user(p) for p in PROMPTS[:4]]
    a = generate_batch(random_lm, convs, s, batch_size=4)
    assert a == generate_batch(random_lm, convs, s, batch_size=1)
    assert a != generate_batch(random_lm, convs, GenerationSettings(**{**s.to_dict(), "seed": 8}), batch_size=4)
    assert PRESETS["paper"].top_p == 0.7 and PRESETS["paper"].max_new_tokens == 512


def test_task_ids_are_set_per_batch_and_cleared(tiny_llama, tiny_tokenizer):
    from pedgpt.adapters import adapter_modules, inject_moe_lora

    model = inject_moe_lora(
        tiny_llama(vocab=len(tiny_tokenizer)),
        ["q_proj", "v_proj"],
        rank=2,
        alpha=4,
        num_universal=1,
        num_specific=2,
        router="task",
    ).eval()
    for _, m in adapter_modules(model):  # non-zero B so that the task actually changes the output
        torch.nn.init.normal_(m.moe_lora_B, std=0.5)
    lm = LoadedModel(model, tiny_tokenizer, TEMPLATE, "<memory>")
    s = GenerationSettings(max_new_tokens=8)
    with pytest.raises(RuntimeError, match="needs task ids"):
        generate_batch(lm, [user("咳嗽")], s)
    out = generate_batch(lm, [user("咳嗽"), user("咳嗽")], s, tasks=["medkqa", "trerecom"], batch_size=2)
    assert out == [generate_batch(lm, [user("咳嗽")], s, tasks=[t])[0] for t in ("medkqa", "trerecom")]
    assert all(m.task_ids is None for _, m in adapter_modules(model))
