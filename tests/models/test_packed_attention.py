"""Packed attention without an L × L mask (pedgpt.models.attention): the document BlockMask equals torch's own,
every path (dense SDPA, SDPA per document, FlexAttention eager and compiled) gives each packed document the
logits and gradients it gets alone, and the block-sparse path allocates no L × L tensor."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
from torch.utils._python_dispatch import TorchDispatchMode

import pedgpt.data.packing as packing
from helpers.packed import worst_packed_vs_alone
from pedgpt.data.packing import DocumentMask, collate_packed, pack_greedy
from pedgpt.models import attention
from pedgpt.models.attention import (
    PackedAttention,
    choose_path,
    model_attention_mask,
    packed_attention,
    packed_attention_forward,
)
from pedgpt.models.logps import SequenceLogProbs


def random_rows(L: int, rows: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        row: list[int] = []
        while True:
            n = rng.choice([1, 3, 40, 127, 128, 200, 300])
            if sum(row) + n > L:
                break
            row.append(n)
        out.append(row)
    return out


def block_map(num: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """BlockMask (counts, indices) → dense (B, nq, nkv) bool."""
    B, _, nq, nkv = idx.shape
    out = torch.zeros(B, nq, nkv, dtype=torch.bool)
    for b in range(B):
        for i in range(nq):
            out[b, i, idx[b, 0, i, : num[b, 0, i]].long()] = True
    return out


@pytest.mark.parametrize("L", [256, 300, 700])
def test_document_block_mask_equals_torchs_create_block_mask(L):
    packed = packed_attention(DocumentMask.from_lengths(random_rows(L, 3, L), L), "flex")
    want = create_block_mask(packed.mask_mod, 3, None, L, L, device="cpu", _compile=False)
    assert packed.shape == want.shape == (3, 1, L, L)
    got_partial, got_full = (
        block_map(packed.kv_num_blocks, packed.kv_indices),
        block_map(packed.full_kv_num_blocks, packed.full_kv_indices),
    )
    assert torch.equal(got_partial, block_map(want.kv_num_blocks, want.kv_indices))
    assert torch.equal(got_full, block_map(want.full_kv_num_blocks, want.full_kv_indices))
    assert packed.sparsity() > 0  # blocks between documents are skipped


def qkv(L: int, heads: int = 4, kv_heads: int = 2, dim: int = 16, seed: int = 0, grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, heads, L, dim), (2, kv_heads, L, dim), (2, kv_heads, L, dim)]
    return [torch.randn(s, generator=g).requires_grad_(grad) for s in shapes]


def dense_reference(q, k, v, packed: PackedAttention, slopes=None):
    """SDPA over the whole row with a dense mask (+ ALiBi bias) — the old path, as the reference."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    allowed = packed.dense_allowed()
    bias = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    if slopes is not None:
        idx = torch.arange(q.shape[2])
        bias = bias + slopes[None, :, None, None] * (idx[None, :] - idx[:, None])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2)


@pytest.fixture
def eager_flex(monkeypatch):
    """FlexAttention without compiling (a dense reference implementation: mask_mod and score_mod semantics)."""
    monkeypatch.setattr(attention, "flex_kernel", lambda: flex_attention)


@pytest.mark.parametrize("alibi", [False, True])
@pytest.mark.parametrize("path", ["sdpa_varlen", "flex"])
def test_each_path_equals_the_dense_mask(path, alibi, eager_flex):
    L = 300
    packed = packed_attention(DocumentMask.from_lengths(random_rows(L, 2, 1), L), "auto")
    q, k, v = qkv(L)
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625]) if alibi else None
    with torch.no_grad():
        got = packed_attention_forward(q, k, v, packed, alibi_slopes=slopes, path=path)
        want = dense_reference(q, k, v, packed, slopes)
    assert got.shape == (2, L, 4, 16)
    assert (got - want).abs().max().item() < 1e-5


def test_compiled_flex_skips_blocks_and_equals_the_dense_mask():
    """The fused kernel honours the BlockMask's blocks (eager flex only evaluates mask_mod): 2 rows of 300."""
    L = 300
    packed = packed_attention(DocumentMask.from_lengths(random_rows(L, 2, 2), L), "flex")
    q, k, v = qkv(L, seed=3)
    with torch.no_grad():
        got = packed_attention_forward(q, k, v, packed)  # flex, compiled (no grad: CPU has no flex backward)
        want = dense_reference(q, k, v, packed)
    assert (got - want).abs().max().item() < 1e-5


def test_sdpa_varlen_gradients_equal_the_dense_mask():
    L = 260
    packed = packed_attention(DocumentMask.from_lengths(random_rows(L, 2, 4), L), "auto")
    ins = qkv(L, seed=5, grad=True)
    out = packed_attention_forward(*ins, packed)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(6))
    got = torch.autograd.grad((out * g).sum(), ins)
    ref = [t.detach().clone().requires_grad_() for t in ins]
    want = torch.autograd.grad((dense_reference(*ref, packed) * g).sum(), ref)
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() < 1e-5


def test_sdpa_varlen_runs_one_call_per_length_bucket(monkeypatch):
    """Many documents cost a few SDPA calls (one per power-of-two length class), each document padded to at most
    2× its length; every position comes back exactly once."""
    lengths = [[3, 4, 100, 120, 5, 7, 1], [128, 5, 7, 6, 90]]
    packed = packed_attention(DocumentMask.from_lengths(lengths, 260), "auto")
    buckets, inverse = packed.buckets()
    flat = packed.flat_segments
    classes = {(n - 1).bit_length() for n in flat}
    assert len(buckets) == len(classes) < len(flat)
    assert sorted(inverse.tolist()) == list(range(2 * 260)) and sum(b.keep.numel() for b in buckets) == 2 * 260
    members = {(n - 1).bit_length(): [m for m in flat if (m - 1).bit_length() == (n - 1).bit_length()] for n in flat}
    for b in buckets:
        group = next(g for g in members.values() if max(g) == b.width and len(g) == b.count)
        assert b.width < 2 * min(group) or min(group) == 1
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    q, k, v = qkv(260)
    with torch.no_grad():
        got = packed_attention_forward(q, k, v, packed, path="sdpa_varlen")
    assert len(calls) == len(buckets)
    assert (got - dense_reference(q, k, v, packed)).abs().max().item() < 1e-5


def fake(device: str, dtype=torch.float32, grad=False):
    return SimpleNamespace(device=torch.device(device) if device != "cuda" else SimpleNamespace(type="cuda"),
                           dtype=dtype, shape=(1, 4, 8, 64), requires_grad=grad)  # fmt: skip


def test_choose_path(monkeypatch):
    cpu, cpu_grad = fake("cpu"), fake("cpu", grad=True)
    assert choose_path("auto", cpu_grad, cpu, cpu) == "sdpa_varlen"
    assert choose_path("auto", cpu, cpu, cpu) == "sdpa_varlen"  # no 15 s compile for a CPU forward
    assert choose_path("flex", cpu, cpu, cpu) == "flex"
    with pytest.raises(NotImplementedError, match="no backward on cpu"):
        choose_path("flex", cpu_grad, cpu, cpu)
    with pytest.raises(ValueError, match="dropout"):
        choose_path("flex", cpu, cpu, cpu, dropout=0.1)
    monkeypatch.setattr(attention, "flash_varlen_available", lambda: True)
    monkeypatch.setattr(attention, "_has_triton", lambda: True)
    bf16 = fake("cuda", torch.bfloat16, grad=True)
    assert choose_path("auto", bf16, bf16, bf16) == "flash_varlen"
    fp32 = fake("cuda", grad=True)
    assert choose_path("auto", fp32, fp32, fp32) == "flex"  # FlashAttention-2 needs fp16 / bf16
    assert choose_path("auto", fp32, fp32, fp32, dropout=0.1) == "sdpa_varlen"
    monkeypatch.setattr(attention, "flash_varlen_available", lambda: False)
    assert choose_path("auto", bf16, bf16, bf16) == "flex"


@pytest.fixture(params=["llama", "qwen2"])
def hf_model(request):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    kw = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    if request.param == "llama":
        cfg, cls = LlamaConfig(num_key_value_heads=2, **kw), LlamaForCausalLM
    else:
        cfg, cls = Qwen2Config(num_key_value_heads=2, use_sliding_window=False, **kw), Qwen2ForCausalLM
    cfg._attn_implementation = "sdpa"
    return cls(cfg).eval()


def packed_batch(vocab: int, lengths=(70, 12, 150, 9, 40, 130, 3), max_len: int = 220, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    docs = [torch.randint(3, vocab, (n,), generator=g).tolist() for n in lengths]
    examples = [{"input_ids": d, "labels": d} for d in docs]
    rows = [[examples[i] for i in r] for r in pack_greedy([len(d) for d in docs], max_len)]
    assert len(rows) > 1 and any(len(r) > 2 for r in rows)
    return rows, collate_packed(rows, max_len, pad_id=0)


@pytest.mark.parametrize("mode", ["sdpa", "auto", "flex"])
def test_hf_packed_logits_equal_unpacked_logits(hf_model, mode, eager_flex, monkeypatch):
    monkeypatch.setattr(hf_model.config, "_attn_implementation", mode)
    rows, batch = packed_batch(97)
    assert worst_packed_vs_alone(hf_model, rows, batch) < 1e-5


@pytest.mark.slow
def test_hf_packed_logits_with_compiled_flex(hf_model, monkeypatch):
    monkeypatch.setattr(hf_model.config, "_attn_implementation", "flex")
    rows, batch = packed_batch(97)
    assert worst_packed_vs_alone(hf_model, rows, batch) < 1e-5


def test_packed_training_gradients_equal_the_dense_path(tiny_llama):
    """One SequenceLogProbs forward + backward: auto (SDPA per document) vs sdpa (dense mask)."""
    rows, batch = packed_batch(97)
    grads = {}
    for mode in ("sdpa", "auto"):
        model = tiny_llama(vocab=97).train()
        model.config._attn_implementation = mode
        net = SequenceLogProbs(model)
        logp, n = net(batch["input_ids"], batch["labels"], batch["attention_mask"], batch["position_ids"])
        (-logp.sum() / n.sum()).backward()
        grads[mode] = {k: p.grad for k, p in model.named_parameters()}
    for k, g in grads["sdpa"].items():
        assert (g - grads["auto"][k]).abs().max().item() < 1e-5, k


class SquareTensors(TorchDispatchMode):
    """Records every op output with two dimensions of at least L."""

    def __init__(self, L: int):
        super().__init__()
        self.L = L
        self.found: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if torch.is_tensor(t) and sum(d >= self.L for d in t.shape) >= 2:
                self.found.append((str(func), tuple(t.shape)))
        return out


def training_step_square_tensors(model, batch) -> list:
    net = SequenceLogProbs(model.train())
    L = batch["input_ids"].shape[1]
    with SquareTensors(L) as seen:
        logp, _ = net(batch["input_ids"], batch["labels"], batch["attention_mask"], batch["position_ids"])
        logp.sum().backward()
    return seen.found


def test_block_sparse_training_step_allocates_no_square_tensor(tiny_llama, monkeypatch):
    """auto never builds an L × L tensor in forward or backward (and never calls block_causal_mask); the same
    detector sees the dense path's (B, 1, L, L) mask, so it can fail."""
    rows, batch = packed_batch(97)
    dense = tiny_llama(vocab=97)
    assert training_step_square_tensors(dense, batch)  # sdpa: the dense mask is there
    model = tiny_llama(vocab=97)
    model.config._attn_implementation = "auto"

    def forbidden(*args, **kwargs):
        raise AssertionError("block_causal_mask called on the block-sparse path")

    monkeypatch.setattr(packing, "block_causal_mask", forbidden)
    assert training_step_square_tensors(model, batch) == []


def test_unsupported_attention_features_fall_back_to_the_dense_mask(hf_model, monkeypatch):
    """A layer asking for what the packed kernels do not do (here a sliding window wider than the row) gets
    dense-mask SDPA built from the segments, with the same result."""
    monkeypatch.setattr(hf_model.config, "_attn_implementation", "auto")
    rows, batch = packed_batch(97)
    mask = model_attention_mask(hf_model, batch["attention_mask"])
    q, k, v = qkv(batch["input_ids"].shape[1])
    module = hf_model.model.layers[0].self_attn
    got, _ = attention.hf_attention_forward(module, q, k, v, mask, scaling=0.25, sliding_window=4096)
    want, _ = attention.hf_attention_forward(module, q, k, v, mask, scaling=0.25)
    assert (got - want).abs().max().item() < 1e-5


def test_load_pretrained_with_auto_attention(tmp_path, tiny_llama):
    """auto / flex are registered transformers attention implementations; unpacked batches (padding masks,
    generation with a cache) run transformers' own SDPA, bit for bit."""
    from pedgpt.models.build import load_pretrained

    tiny_llama(vocab=97).save_pretrained(tmp_path)
    sdpa, auto = load_pretrained(str(tmp_path)), load_pretrained(str(tmp_path), attention="auto")
    assert auto.config._attn_implementation == "auto"
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    pad = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        assert torch.equal(
            sdpa(input_ids=ids, attention_mask=pad).logits, auto(input_ids=ids, attention_mask=pad).logits
        )
        a = sdpa.generate(ids[:1], max_new_tokens=5, do_sample=False)
        b = auto.generate(ids[:1], max_new_tokens=5, do_sample=False)
    assert torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and attention.flash_varlen_available()), reason="CUDA + flash_attn")
@pytest.mark.parametrize("alibi", [False, True])
def test_flash_varlen_equals_the_dense_mask(alibi):  # pragma: no cover - needs a GPU with flash_attn
    L = 300
    packed = packed_attention(DocumentMask.from_lengths(random_rows(L, 2, 7), L), "auto", "cuda")
    q, k, v = (t.cuda().bfloat16() for t in qkv(L, dim=64))
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], device="cuda") if alibi else None
    with torch.no_grad():
        got = packed_attention_forward(q, k, v, packed, alibi_slopes=slopes, path="flash_varlen")
        want = packed_attention_forward(q, k, v, packed, alibi_slopes=slopes, path="sdpa_varlen")
    assert (got.float() - want.float()).abs().max().item() < 2e-2
