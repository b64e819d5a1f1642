"""Dry-run planner: parameter counts and per-GPU memory of the configured run, without weights.

The architecture is built on the meta device from the model config's ``arch`` block — the real one: for
Baichuan2-13B, pedgpt's native ALiBi model (13,896,668,160 parameters); MoE-LoRA counts its adapters on the
family's real module names (``W_pack`` ...).

Model states follow how ``pedgpt.distributed.fsdp`` stores them: every parameter is sharded on dim 0
over ``gpus`` = devices × nodes (FSDP2 chunking: ⌈d₀ / gpus⌉ rows on the first ranks) and kept in fp32
(the master copy; compute runs in ``trainer.fsdp.param_dtype``); trainable parameters add an fp32
gradient shard and AdamW's two fp32 moments — 16 bytes per trainable parameter, 4 per frozen one.

Activations (an estimate, per GPU, for micro-batch b and sequence s; h hidden, f MLP width, L layers):
without activation checkpointing each decoder layer keeps ≈ b·s·(12h + 3f)·c bytes for backward
(c = compute dtype size; SDPA/flash attention stores no s×s scores); with checkpointing only each
layer's input b·s·h·c survives, plus one layer's full set while it is recomputed. The LM head adds the
fp32 log-softmax of ``loss_chunk_size`` rows (or of all b·s label rows without chunking) and its input.

Attention scores are never stored by SDPA's fused kernels, but the masks the attention path builds are:
ALiBi (Baichuan2-13B) adds a (b, heads, s, s) bias in the compute dtype, shared by every layer, plus an fp32
(b, s, s) temporary while it is built; packed rows carry a (b, 1, s, s) fp32 block mask; padded batches a
(b, 1, s, s) boolean mask. Packed rows under ``model.attention`` ``auto`` / ``flex``
(:mod:`pedgpt.models.attention`) build no such mask (a document ``BlockMask`` of (s/128)² block indices, ALiBi
as a ``score_mod`` or FlashAttention's ``alibi_slopes``): counted as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM

from pedgpt.models.attention import PACKED_MODES
from pedgpt.models.build import arch_config
from pedgpt.stages.registry import get_stage

FP32 = 4
ADAM_STATES = 2
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _gpus(cfg: DictConfig) -> int:
    d = cfg.trainer.devices
    devices = int(d) if isinstance(d, int) or (isinstance(d, str) and d.isdigit()) else 1
    return max(1, devices) * max(1, int(cfg.trainer.num_nodes))


def shard_numel(shape: Iterable[int], gpus: int) -> int:
    """Elements of the largest (first) FSDP2 shard of a tensor of ``shape`` split on dim 0."""
    shape = list(shape)
    if not shape:
        return 1
    return math.ceil(shape[0] / gpus) * math.prod(shape[1:])


def model_state_bytes(tensors: Iterable[tuple[tuple[int, ...], bool]], gpus: int) -> dict[str, int]:
    """Per-GPU bytes of parameters, gradients and AdamW state for (shape, trainable) tensors."""
    params = grads = optim = 0
    for shape, trainable in tensors:
        n = shard_numel(shape, gpus)
        params += FP32 * n
        if trainable:
            grads += FP32 * n
            optim += ADAM_STATES * FP32 * n
    return {"params": params, "grads": grads, "optimizer": optim}


def activation_bytes(
    hidden: int,
    ffn: int,
    layers: int,
    vocab: int,
    micro_batch: int,
    seq_len: int,
    checkpointing: bool,
    compute_bytes: int = 2,
    loss_chunk: int = 0,
) -> int:
    tokens = micro_batch * seq_len
    per_layer_full = tokens * (12 * hidden + 3 * ffn) * compute_bytes
    if checkpointing:
        layers_part = layers * tokens * hidden * compute_bytes + per_layer_full
    else:
        layers_part = layers * per_layer_full
    rows = min(loss_chunk, tokens) if loss_chunk else tokens
    head = rows * vocab * FP32 * 2 + tokens * hidden * compute_bytes
    return layers_part + head


def attention_bytes(
    alibi: bool, packed: bool, heads: int, rows: int, seq_len: int, compute_bytes: int, block_sparse: bool = False
) -> int:
    """Bytes of the attention masks one forward materialises (see the module docstring); ``block_sparse``: packed
    rows through pedgpt's packed attention (``model.attention`` auto / flex), which builds none."""
    if packed and block_sparse:
        return 0
    square = rows * seq_len * seq_len
    if alibi:
        return square * heads * compute_bytes + square * 4
    return square * (4 + compute_bytes if packed else 1)


def meta_model(cfg: DictConfig):
    config = arch_config(cfg.model, vocab_size=int(cfg.model.arch.vocab_size or cfg.model.vocab_size))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config), config


def advice(
    need: float, have: float, states: dict[str, int], act: int, cfg: DictConfig, stage: str, gpus: int
) -> list[str]:
    tips = []
    st = cfg[stage]
    if not st.activation_checkpointing:
        tips.append(f"enable activation checkpointing ({stage}.activation_checkpointing=true)")
    if int(st.batch_size) > 1:
        tips.append(f"lower {stage}.batch_size (activations scale with it) and raise trainer.accumulate_grad_batches")
    per_gpu_states = sum(states.values())
    if per_gpu_states > have:
        min_gpus = math.ceil(per_gpu_states * gpus / have)
        tips.append(
            f"model states alone need {per_gpu_states / 2**30:.1f} GiB per GPU: use at least {min_gpus} GPUs "
            f"(trainer.devices × trainer.num_nodes)"
        )
    if not st.loss_chunk_size:
        tips.append(f"set {stage}.loss_chunk_size (e.g. 2048) to bound the LM head's fp32 logits")
    return tips


def plan(cfg: DictConfig) -> dict[str, Any]:
    model, config = meta_model(cfg)
    spec = get_stage(cfg.pipeline[0])(cfg)
    stage = spec.key()
    model = spec.plan_model(model)
    seen: set[int] = set()
    tensors = []
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            tensors.append((tuple(p.shape), p.requires_grad))
    total = sum(math.prod(s) for s, _ in tensors)
    trainable = sum(math.prod(s) for s, t in tensors if t)
    gpus = _gpus(cfg)
    states = model_state_bytes(tensors, gpus)
    st = cfg[stage]
    sharded = cfg.trainer.strategy == "fsdp"
    compute = DTYPE_BYTES.get(cfg.trainer.fsdp.param_dtype if sharded else cfg.model.dtype, 2)
    rows = int(st.batch_size) * spec.rows_per_example  # e.g. DFPO: chosen + rejected rows
    act = activation_bytes(
        config.hidden_size,
        config.intermediate_size,
        config.num_hidden_layers,
        config.vocab_size,
        rows,
        int(st.max_len),
        bool(st.activation_checkpointing),
        compute,
        int(st.loss_chunk_size),
    )
    attn = attention_bytes(
        getattr(config, "position_embedding", None) == "alibi",
        bool(st.get("packing", False)),
        config.num_attention_heads,
        rows,
        int(st.max_len),
        compute,
        block_sparse=cfg.model.get("attention", "sdpa") in PACKED_MODES,
    )
    need = sum(states.values()) + act + attn
    have = float(cfg.plan.gpu_memory_gb) * 2**30 * float(cfg.plan.usable_fraction)
    out = {
        "model": cfg.model.name,
        "stage": spec.name,
        "params_total": total,
        "params_trainable": trainable,
        "gpus": gpus,
        "bytes_per_gpu": int(need),
        "bytes": {**states, "activations": act, "attention": attn},
        "gib_per_gpu": round(need / 2**30, 2),
        "gpu_memory_gb": float(cfg.plan.gpu_memory_gb),
        "fits": bool(need <= have),
    }
    if not out["fits"]:
        out["advice"] = advice(need, have, states, act, cfg, stage, gpus)
    return out
