"""Converted Baichuan2 checkpoints against an independent float64 forward; ALiBi slopes; the 7B/13B rule."""

from __future__ import annotations

import json
import os

import pytest
import torch

from helpers.baichuan2_reference import paper_alibi_slopes, reference_logits
from pedgpt.models.baichuan2 import alibi_slopes
from pedgpt.models.baichuan2.convert import native_config_from_official, official_position_embedding


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_converted_logits_match_the_independent_forward(family, official_dir, native_model):
    model = native_model(family)
    ids = torch.randint(3, model.config.vocab_size, (2, 23), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(input_ids=ids).logits.double()
    want = reference_logits(official_dir(family), ids)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-5
    assert want.std() > 0.1  # the comparison is not between two near-constant tensors


def test_alibi_slopes_for_40_heads_follow_the_paper():
    # n = 40: the closest lower power of two is 32, whose slopes are 2^(-8k/32) = 2^(-k/4) for k = 1..32; the
    # remaining 8 heads take every other slope of the 64-head problem, 2^(-8k/64) for k = 1, 3, ..., 15.
    expected = [2 ** (-k / 4) for k in range(1, 33)] + [2 ** (-k / 8) for k in range(1, 16, 2)]
    got = alibi_slopes(40).tolist()
    assert len(got) == 40
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(paper_alibi_slopes(40), rel=1e-12)


@pytest.mark.parametrize("heads", [1, 2, 5, 8, 12, 32, 64])
def test_alibi_slopes_other_head_counts(heads):
    assert alibi_slopes(heads).tolist() == pytest.approx(paper_alibi_slopes(heads), rel=1e-12)
    if heads == 8:
        assert alibi_slopes(8).tolist() == pytest.approx([1 / 2**k for k in range(1, 9)], rel=1e-12)


def _official(**extra):
    cfg = {
        "model_type": "baichuan",
        "vocab_size": 125696,
        "hidden_size": 5120,
        "intermediate_size": 13696,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "model_max_length": 4096,
        "rms_norm_eps": 1e-6,
    }
    cfg.update(extra)
    return cfg


def test_rope_vs_alibi_is_decided_by_max_position_embeddings_not_width():
    assert official_position_embedding(_official()) == "alibi"
    assert official_position_embedding(_official(max_position_embeddings=4096)) == "rope"
    thin = _official(hidden_size=4096, num_attention_heads=32, intermediate_size=11008, num_hidden_layers=32)
    assert native_config_from_official(thin).position_embedding == "alibi"  # 7B width, but no max_position_emb.
    wide = native_config_from_official(_official(max_position_embeddings=2048))
    assert (wide.position_embedding, wide.max_position_embeddings) == ("rope", 2048)
    alibi = native_config_from_official(_official(model_max_length=8192))
    assert (alibi.position_embedding, alibi.max_position_embeddings) == ("alibi", 8192)


@pytest.mark.parametrize("family,position", [("baichuan2_7b", "rope"), ("baichuan2_13b", "alibi")])
def test_converted_config_records_the_position_embedding(family, position, official_dir, native_dir):
    official = json.load(open(os.path.join(official_dir(family), "config.json")))
    native = json.load(open(os.path.join(native_dir(family), "config.json")))
    assert ("max_position_embeddings" in official) == (position == "rope")
    assert native["model_type"] == "baichuan2"
    assert native["position_embedding"] == position
    assert native["official_config"] == official
