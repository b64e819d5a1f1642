"""KV-cache decoding equals decoding without a cache, for the RoPE (7B) and ALiBi (13B) models, batched with left
padding too."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

FAMILIES = ["baichuan2_7b", "baichuan2_13b"]


def greedy_without_cache(model, prompt: list[int], steps: int) -> list[int]:
    """Recompute the full prefix every step (no cache, no padding) and take the argmax."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt) :]


def prompts(vocab: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(3, vocab, (n,), generator=g).tolist() for n in (9, 4, 6)]


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_steps_reproduce_full_forward_logits(family, native_model):
    model = native_model(family)
    ids = torch.randint(3, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        cache = DynamicCache()
        out = model(input_ids=ids[:, :7], past_key_values=cache, use_cache=True)
        steps = [out.logits]
        for t in range(7, 12):
            steps.append(model(input_ids=ids[:, t : t + 1], past_key_values=cache, use_cache=True).logits)
    assert cache.get_seq_length() == 12
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_with_cache_equals_greedy_without_cache(family, native_model):
    model = native_model(family)
    prompt = prompts(model.config.vocab_size)[0]
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=8, do_sample=False, use_cache=True, eos_token_id=None, pad_token_id=0
        )
    assert out[0, len(prompt) :].tolist() == greedy_without_cache(model, prompt, 8)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padded_batch_generates_what_each_prompt_generates_alone(family, native_model):
    model = native_model(family)
    batch = prompts(model.config.vocab_size)
    width = max(map(len, batch))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=6,
            do_sample=False,
            use_cache=True,
            eos_token_id=None,
            pad_token_id=0,
        )
    for row, prompt in zip(out[:, width:].tolist(), batch):
        assert row == greedy_without_cache(model, prompt, 6)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padding_leaves_the_real_positions_unchanged(family, native_model):
    model = native_model(family)
    prompt = prompts(model.config.vocab_size)[1]
    pad = 5
    ids = torch.tensor([[0] * pad + prompt])
    mask = torch.tensor([[0] * pad + [1] * len(prompt)])
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([prompt])).logits[0]
        padded = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[0, pad:]
    assert (padded - alone).abs().max().item() < 1e-5
