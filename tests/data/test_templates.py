import pytest

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.schema import Message
from pedgpt.data.templates import get_template, template_names

CONV = [
    Message("user", "宝宝发烧怎么办"),
    Message("assistant", "先量体温"),
    Message("user", "38度呢"),
    Message("assistant", "多喝水，观察精神"),
]


def test_registry_has_the_default_and_more():
    assert {"human_assistant", "chatml", "baichuan2"} <= set(template_names())
    with pytest.raises(KeyError, match="unknown chat template"):
        get_template("nope")


def test_human_assistant_renders_the_paper_format():
    expected = (
        "你是儿科助手\n\nHuman: 宝宝发烧怎么办\n\nAssistant: 先量体温</s>"
        "\n\nHuman: 38度呢\n\nAssistant: 多喝水，观察精神</s>"
    )
    assert get_template("human_assistant").render(CONV, system="你是儿科助手") == expected


def test_chatml_renders_expected_string():
    expected = (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n宝宝发烧怎么办<|im_end|>\n<|im_start|>assistant\n"
        "先量体温<|im_end|>\n<|im_start|>user\n38度呢<|im_end|>\n<|im_start|>assistant\n多喝水，观察精神<|im_end|>"
    )
    assert get_template("chatml").render(CONV, system="S") == expected


def test_baichuan2_renders_expected_string():
    expected = (
        "<reserved_106>宝宝发烧怎么办<reserved_107>先量体温</s><reserved_106>38度呢<reserved_107>多喝水，观察精神</s>"
    )
    assert get_template("baichuan2").render(CONV) == expected


def _decode_trained(tok, enc):
    return tok.decode([t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE_INDEX])


@pytest.mark.parametrize("name", ["human_assistant", "chatml"])
def test_loss_mask_covers_assistant_turns_only(tiny_tokenizer, name):
    tmpl = get_template(name)
    enc = tmpl.encode(tiny_tokenizer, CONV)
    assert len(enc["input_ids"]) == len(enc["labels"])
    eot = tmpl.end_of_turn or tiny_tokenizer.eos_token
    assert _decode_trained(tiny_tokenizer, enc) == f"先量体温{eot}多喝水，观察精神{eot}"
    # the whole sequence decodes to the rendered conversation (after the bos token)
    assert tiny_tokenizer.decode(enc["input_ids"][1:]) == tmpl.render(CONV, eos_token=tiny_tokenizer.eos_token)


def test_truncation_keeps_the_final_answer_and_drops_the_oldest_context(tiny_tokenizer):
    tmpl = get_template("human_assistant")
    full = tmpl.encode(tiny_tokenizer, CONV)
    answer = tiny_tokenizer("多喝水，观察精神", add_special_tokens=False)["input_ids"]
    enc = tmpl.encode(tiny_tokenizer, CONV, max_len=len(answer) + 4)
    assert enc["input_ids"] == full["input_ids"][-(len(answer) + 4) :]
    assert tmpl.encode(tiny_tokenizer, CONV, max_len=len(answer)) is None


def test_jinja_chat_template_matches_render(tiny_tokenizer):
    msgs = [{"role": "system", "content": "S"}] + [{"role": m.role, "content": m.content} for m in CONV]
    out = tiny_tokenizer.apply_chat_template(msgs, tokenize=False)
    assert out == get_template("human_assistant").render(CONV, system="S", eos_token=tiny_tokenizer.eos_token)


def test_generation_prompt_ends_with_assistant_prefix():
    s = get_template("human_assistant").render(CONV[:1], add_generation_prompt=True)
    assert s == "Human: 宝宝发烧怎么办\n\nAssistant: "
