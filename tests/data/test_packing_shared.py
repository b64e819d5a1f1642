"""Packing efficiency on the real SFT data: real tokens ÷ (rows × max_len) ≥ 0.97 at max_len 1024.

The data is ``sft/train.jsonl`` of a PedCorpus built from ``../shared/data`` (or ``PEDGPT_DATA_DIR``),
encoded with the tokenizer the pipeline trains for that corpus (``tokenizer_texts`` → ``cached_tokenizer``,
the tiny model's vocabulary and template), then packed by ``pack_greedy``.
"""

import time
from collections import Counter

import pytest

from helpers import compose
from helpers.corpus import shared_data_dir

MAX_LEN = 1024

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.skipif(shared_data_dir() is None, reason="needs ../shared/data or PEDGPT_DATA_DIR"),
]


def test_sft_packing_efficiency_on_the_shared_data(shared_corpus, shared_cache):
    from pedgpt.data import stage_data as sd
    from pedgpt.data.encode import encode_instructions
    from pedgpt.data.packing import pack_greedy
    from pedgpt.data.templates import get_template
    from pedgpt.models.tokenizer import cached_tokenizer
    from pedgpt.training.init_export import tokenizer_texts

    out, _ = shared_corpus
    cfg = compose([f"data.root={out}"])
    tok, _ = cached_tokenizer(tokenizer_texts(cfg), str(shared_cache), int(cfg.model.vocab_size), cfg.model.template)
    records = sd.corpus_part(cfg.data, "sft", "train")
    skipped: Counter = Counter()
    examples = encode_instructions(records, tok, get_template(cfg.model.template), MAX_LEN, skipped)
    assert len(examples) + sum(skipped.values()) == len(records)
    assert len(examples) >= 0.95 * len(records), skipped
    lengths = [len(e["input_ids"]) for e in examples]

    t0 = time.perf_counter()
    rows = pack_greedy(lengths, MAX_LEN)
    seconds = time.perf_counter() - t0

    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))  # every document once
    assert all(sum(lengths[i] for i in row) <= MAX_LEN for row in rows)
    efficiency = sum(lengths) / (len(rows) * MAX_LEN)
    print(f"{len(lengths)} documents, {len(rows)} rows, efficiency {efficiency:.4f}, packed in {seconds:.1f}s")
    assert efficiency >= 0.97
    assert seconds < 60
    assert pack_greedy(lengths, MAX_LEN) == rows  # deterministic
