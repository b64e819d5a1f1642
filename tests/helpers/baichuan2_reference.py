"""An independent float64 Baichuan2 forward, written for the tests from the published architecture.

It reads an official-layout directory (``config.json`` + ``pytorch_model*.bin``) with plain ``torch.load`` and
shares no code with :mod:`pedgpt.models.baichuan2`: W_pack split into q/k/v, RoPE as explicit (i, i + d/2) pair
rotations (7B: config has ``max_position_embeddings``) or ALiBi from the paper's slope rule (13B), RMSNorm, SwiGLU,
NormHead (rows scaled to unit L2 norm). Causal attention over one unpadded sequence per batch row.
"""

from __future__ import annotations

import json
import math
import os

import torch


def paper_alibi_slopes(n_heads: int) -> list[float]:
    """Press et al.: the geometric sequence starting at 2^(-8/n) with that ratio for n a power of two; otherwise
    the slopes of the largest power of two below n plus the odd-indexed terms of the 2x sequence."""

    def geometric(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return geometric(n_heads)
    lower = 2 ** math.floor(math.log2(n_heads))
    return geometric(lower) + geometric(2 * lower)[0::2][: n_heads - lower]


def load_official_tensors(model_dir: str) -> dict[str, torch.Tensor]:
    index = os.path.join(model_dir, "pytorch_model.bin.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["pytorch_model.bin"]
    state = {}
    for name in files:
        state.update(torch.load(os.path.join(model_dir, name), map_location="cpu", weights_only=True))
    return {k: v.to(torch.float64) for k, v in state.items()}


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight


def _rope_pairs(x: torch.Tensor, theta: float) -> torch.Tensor:
    """x: (B, H, L, D); dimension i is paired with i + D/2 and rotated by position * theta^(-2i/D)."""
    d, length = x.shape[-1], x.shape[-2]
    out = torch.empty_like(x)
    for i in range(d // 2):
        freq = theta ** (-2.0 * i / d)
        angle = torch.arange(length, dtype=torch.float64) * freq
        c, s = torch.cos(angle), torch.sin(angle)
        a, b = x[..., i], x[..., i + d // 2]
        out[..., i] = a * c - b * s
        out[..., i + d // 2] = b * c + a * s
    return out


def reference_logits(model_dir: str, input_ids: torch.Tensor) -> torch.Tensor:
    """float64 logits (B, L, vocab) for unpadded ``input_ids`` (B, L)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_official_tensors(model_dir)
    h, n_heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["rms_norm_eps"]
    d = h // n_heads
    rope = "max_position_embeddings" in cfg
    batch, length = input_ids.shape
    x = w["model.embed_tokens.weight"][input_ids]
    key_minus_query = torch.arange(length)[None, :] - torch.arange(length)[:, None]
    alibi = torch.tensor(paper_alibi_slopes(n_heads), dtype=torch.float64)[:, None, None] * key_minus_query
    future = key_minus_query > 0
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = _rms_norm(x, w[p + "input_layernorm.weight"], eps)
        qkv = a @ w[p + "self_attn.W_pack.weight"].T
        q, k, v = (qkv[..., j * h : (j + 1) * h].reshape(batch, length, n_heads, d).transpose(1, 2) for j in range(3))
        if rope:
            q, k = _rope_pairs(q, 10000.0), _rope_pairs(k, 10000.0)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        if not rope:
            scores = scores + alibi
        scores = scores.masked_fill(future, float("-inf"))
        ctx = torch.softmax(scores, dim=-1) @ v
        x = x + ctx.transpose(1, 2).reshape(batch, length, h) @ w[p + "self_attn.o_proj.weight"].T
        a = _rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = a @ w[p + "mlp.gate_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * (a @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = _rms_norm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"]
    head = head / head.pow(2).sum(dim=1, keepdim=True).sqrt()
    return x @ head.T
