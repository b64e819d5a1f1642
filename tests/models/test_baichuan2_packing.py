"""Packed rows (a DocumentMask + restarting position_ids) give every document the logits it gets alone, for the
ALiBi and the RoPE model, on every attention path: the dense block-diagonal mask (``sdpa``), SDPA per document
(``auto`` on CPU) and FlexAttention (``flex``: eager here, compiled in the slow test; ALiBi as a ``score_mod``);
right padding with a 2-D mask likewise."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention.flex_attention import flex_attention

from helpers.packed import worst_packed_vs_alone
from pedgpt.data.packing import collate_packed, pack_greedy
from pedgpt.models import attention
from pedgpt.models.logps import SequenceLogProbs


def packed_vs_alone(model, mask_dtype=torch.float32, lengths=(7, 12, 5, 9, 3), max_len=20) -> float:
    g = torch.Generator().manual_seed(11)
    docs = [torch.randint(3, model.config.vocab_size, (n,), generator=g).tolist() for n in lengths]
    examples = [{"input_ids": d, "labels": d} for d in docs]
    rows = [[examples[i] for i in r] for r in pack_greedy([len(d) for d in docs], max_len)]
    assert any(len(r) > 1 for r in rows)
    batch = collate_packed(rows, max_len, pad_id=0, mask_dtype=mask_dtype)
    return worst_packed_vs_alone(model, rows, batch)


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
@pytest.mark.parametrize("mask_dtype", [torch.float32, torch.bfloat16])
def test_packed_logits_equal_unpacked_logits(family, mask_dtype, native_model):
    assert native_model(family).config._attn_implementation == "sdpa"  # the dense mask
    assert packed_vs_alone(native_model(family), mask_dtype) < 1e-5


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
@pytest.mark.parametrize("mode", ["auto", "flex"])
def test_block_sparse_packed_logits_equal_unpacked_logits(family, mode, native_model, monkeypatch):
    model = native_model(family)
    monkeypatch.setattr(model.config, "_attn_implementation", mode)
    monkeypatch.setattr(attention, "flex_kernel", lambda: flex_attention)  # eager: mask_mod / score_mod semantics
    lengths = (70, 12, 150, 9, 40, 130, 3)  # rows of 220: several 128-blocks, some skipped
    assert packed_vs_alone(model, lengths=lengths, max_len=220) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_compiled_flex_packed_logits_equal_unpacked_logits(family, native_model, monkeypatch):
    model = native_model(family)
    monkeypatch.setattr(model.config, "_attn_implementation", "flex")
    assert packed_vs_alone(model, lengths=(70, 12, 150, 9, 40, 130, 3), max_len=220) < 1e-5


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_block_sparse_training_gradients_equal_the_dense_mask(family, native_dir):
    """A packed SequenceLogProbs forward + backward: auto (SDPA per document, ALiBi per document) = sdpa."""
    from transformers import AutoModelForCausalLM

    g = torch.Generator().manual_seed(5)
    docs = [torch.randint(3, 500, (n,), generator=g).tolist() for n in (30, 7, 50, 21, 44)]
    examples = [{"input_ids": d, "labels": d} for d in docs]
    rows = [[examples[i] for i in r] for r in pack_greedy([len(d) for d in docs], 80)]
    batch = collate_packed(rows, 80, pad_id=0)
    grads = {}
    for mode in ("sdpa", "auto"):
        model = AutoModelForCausalLM.from_pretrained(native_dir(family), dtype=torch.float32, attn_implementation=mode)
        logp, n = SequenceLogProbs(model.train())(
            batch["input_ids"], batch["labels"], batch["attention_mask"], batch["position_ids"]
        )
        (-logp.sum() / n.sum()).backward()
        grads[mode] = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert grads["sdpa"].keys() == grads["auto"].keys()
    for k, grad in grads["sdpa"].items():
        assert (grad - grads["auto"][k]).abs().max().item() < 1e-5, k


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_packing_without_the_mask_would_leak(family, native_model):
    """The comparison above is sensitive: restarted positions alone (causal attention across documents) differ."""
    model = native_model(family)
    g = torch.Generator().manual_seed(12)
    first, second = (torch.randint(3, model.config.vocab_size, (n,), generator=g).tolist() for n in (6, 6))
    ids = torch.tensor([first + second])
    positions = torch.tensor([list(range(6)) + list(range(6))])
    with torch.no_grad():
        leaked = model(input_ids=ids, position_ids=positions).logits[0, 6:]
        alone = model(input_ids=torch.tensor([second])).logits[0]
    assert (leaked - alone).abs().max().item() > 1e-3


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_right_padding_with_a_2d_mask(family, native_model):
    model = native_model(family)
    g = torch.Generator().manual_seed(13)
    short, long = (torch.randint(3, model.config.vocab_size, (n,), generator=g).tolist() for n in (5, 9))
    ids = torch.tensor([short + [0] * 4, long])
    mask = torch.tensor([[1] * 5 + [0] * 4, [1] * 9])
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask).logits
        alone = [model(input_ids=torch.tensor([d])).logits[0] for d in (short, long)]
    assert (batched[0, :5] - alone[0]).abs().max().item() < 1e-5
    assert (batched[1] - alone[1]).abs().max().item() < 1e-5
