"""``token_ids``: the backend's offset-free batch encoder gives exactly what the tokenizer call gives, whatever state
an earlier call left the backend in."""

import copy

from pedgpt.data.encode import token_ids

TEXTS = ["宝宝发烧了怎么办？", "", "Human: 孩子咳嗽</s>还在吗 🙂", "手足口病\n\n多见于五岁以下儿童" * 30]


def wrapper_ids(tok, texts):
    return tok(texts, add_special_tokens=False)["input_ids"]


def test_equals_the_tokenizer_call_special_tokens_included(tiny_tokenizer):
    assert tiny_tokenizer.eos_token == "</s>"  # the third text carries it: kept as one special id by both paths
    assert token_ids(TEXTS, tiny_tokenizer) == wrapper_ids(tiny_tokenizer, TEXTS)
    assert tiny_tokenizer.eos_token_id in token_ids(TEXTS, tiny_tokenizer)[2]
    assert token_ids([], tiny_tokenizer) == []


def test_truncation_or_padding_left_on_the_backend_does_not_leak_in(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    full = wrapper_ids(tok, TEXTS)
    tok.backend_tokenizer.enable_truncation(max_length=3)
    tok.backend_tokenizer.enable_padding(pad_id=0, pad_token="<pad>")
    assert token_ids(TEXTS, tok) == full
    assert max(len(ids) for ids in full) > 3


def test_split_special_tokens_follows_the_wrapper(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.backend_tokenizer.encode_special_tokens = True  # out of step with the wrapper: the wrapper's answer wins
    assert token_ids(TEXTS, tok) == wrapper_ids(copy.deepcopy(tiny_tokenizer), TEXTS)
