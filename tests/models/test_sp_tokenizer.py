"""The fast tokenizer converted from a sentencepiece BPE tokenizer.model encodes exactly like sentencepiece
(the sentencepiece library is the oracle) and keeps the official special ids."""

from __future__ import annotations

import os

import pytest
from transformers import AutoTokenizer

from pedgpt.models.sp_tokenizer import read_sp_model

spm = pytest.importorskip("sentencepiece")

TEXTS = {
    "chinese": [
        "小儿发热是儿科最常见的症状之一。",
        "宝宝咳嗽三天，晚上更厉害，要不要去医院？",
        "新生儿黄疸一般两周内消退",
    ],
    "english": ["Fever is common in children.", "Call a doctor if the child is unusually sleepy!", "Hello, World"],
    "digits": ["体温39.5℃，体重12.3kg", "2024-05-17 08:30", "1234567890", "dose 2.5 mL x3"],
    "spaces": ["two  spaces", "four    spaces", "  leading and trailing  ", " ", "     ", "a \u3000b"],
    "newline_tab": ["第一行\n第二行", "a\n\n\nb", "\tindented\twith tabs", "mixed \n\t \n", "\n"],
    "emoji": ["😀 宝宝笑了", "🍎🍌", "👨‍👩‍👧 family"],
    "byte_fallback": ["龘靐齉", "𠮷野家", "Ærøskøbing ĳ ß", "עברית", "ﬁ ligature", "\x01control\x7f"],
    "user_symbols": [
        "<reserved_106>孩子发烧了<reserved_107>",
        "<SEP>问题<CLS>",
        "x<reserved_0>y<reserved_127>",
        "<mark_5><MASK>",
    ],
    "mixed": ["患儿3岁，T 38.7℃, HR 120 bpm\n建议：多喝水 😊", "def f(x):\n    return 2 * x  # 注释"],
}
CASES = [(k, t) for k, ts in TEXTS.items() for t in ts]


@pytest.fixture(scope="module")
def pair(official_dir, native_dir):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(official_dir("baichuan2_13b"), "tokenizer.model"))
    return sp, AutoTokenizer.from_pretrained(native_dir("baichuan2_13b"))


@pytest.mark.parametrize("kind,text", CASES, ids=[f"{k}{i}" for i, (k, _) in enumerate(CASES)])
def test_ids_equal_sentencepiece(pair, kind, text):
    sp, tok = pair
    want = sp.encode(text)
    assert tok(text, add_special_tokens=False)["input_ids"] == want
    assert tok(text)["input_ids"] == want  # no BOS/EOS added, like the official tokenizer
    assert tok.decode(want) == sp.decode(want) == text


def test_test_set_exercises_what_it_claims(pair):
    sp, _ = pair
    pieces = {t: sp.encode(t, out_type=str) for _, t in CASES}
    assert any(p.startswith("<0x") for t in TEXTS["byte_fallback"] for p in pieces[t])
    assert any(p.startswith("<0x") for t in TEXTS["emoji"] for p in pieces[t])
    assert all(len(p) == 1 for p in pieces["1234567890"])  # split digits
    assert "<reserved_106>" in pieces["<reserved_106>孩子发烧了<reserved_107>"]
    assert any(set(p) == {"\u2581"} and len(p) > 1 for t in TEXTS["spaces"] for p in pieces[t])


def test_special_ids_and_sizes(pair):
    sp, tok = pair
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 0)
    assert (tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token) == ("<unk>", "<s>", "</s>", "<unk>")
    assert tok.convert_tokens_to_ids(["<reserved_106>", "<reserved_107>"]) == [195, 196]
    assert tok("<reserved_106>", add_special_tokens=False)["input_ids"] == [195]
    assert len(tok) == sp.get_piece_size()
    assert tok.decode([195, 196]) == "<reserved_106><reserved_107>"


def test_protobuf_parse_matches_sentencepiece(official_dir):
    from sentencepiece import sentencepiece_model_pb2 as pb2

    path = os.path.join(official_dir("baichuan2_7b"), "tokenizer.model")
    oracle = pb2.ModelProto()
    oracle.ParseFromString(open(path, "rb").read())
    ours = read_sp_model(path)
    assert ours.pieces == [(p.piece, p.score, p.type) for p in oracle.pieces]
    t, n = oracle.trainer_spec, oracle.normalizer_spec
    assert (
        (ours.byte_fallback, ours.split_digits, ours.add_dummy_prefix, ours.remove_extra_whitespaces)
        == (t.byte_fallback, t.split_digits, n.add_dummy_prefix, n.remove_extra_whitespaces)
        == (True, True, False, False)
    )
    assert (ours.unk_id, ours.bos_id, ours.eos_id, ours.pad_id) == (t.unk_id, t.bos_id, t.eos_id, t.pad_id)
    assert ours.normalizer_name == n.name == "identity"
    assert ours.model_type == "bpe"


def test_random_mixtures_agree(pair):
    import random

    sp, tok = pair
    rng = random.Random(0)
    alphabet = list("小儿发热咳嗽宝宝医院体温度abcdefgxyzABC0123456789.,!?，。") + [
        " ",
        "  ",
        "\n",
        "\t",
        "😀",
        "龘",
        "<reserved_106>",
    ]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(300)]
    mismatches = [t for t in texts if tok(t, add_special_tokens=False)["input_ids"] != sp.encode(t)]
    assert mismatches == []


def test_chat_template_uses_the_official_role_ids(pair):
    _, tok = pair
    messages = [
        {"role": "system", "content": "你是儿科医生。"},
        {"role": "user", "content": "孩子发烧"},
        {"role": "assistant", "content": "多喝水"},
        {"role": "user", "content": "还咳嗽"},
    ]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(ids, add_special_tokens=False)["input_ids"]
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    # system text, [195] question, [196] answer </s>, [195] question, [196] to generate after
    assert ids == enc("你是儿科医生。") + [195] + enc("孩子发烧") + [196] + enc("多喝水") + [2] + [195] + enc(
        "还咳嗽"
    ) + [196]
