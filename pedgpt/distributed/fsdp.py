"""FSDP2: build a causal LM on the meta device, shard it per decoder layer + root, materialise shard by shard.

Every rank reads each tensor of the HF checkpoint lazily (safetensors, memory-mapped) and keeps only its
own slice, so no rank ever holds the full model. Adapter tensors are initialised in full on every rank
(same seed) before sharding and stay in their decoder layer's unit; FSDP2 shards frozen and trainable
parameters of one unit together. Mixed precision: parameters are kept in fp32 (the sharded master
copy), cast to ``param_dtype`` for compute, gradients reduced in ``reduce_dtype``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import torch
from accelerate import init_empty_weights
from safetensors import safe_open
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import distribute_tensor
from transformers import AutoConfig, AutoModelForCausalLM

from pedgpt.adapters.inject import adapter_modules
from pedgpt.common.constants import DTYPES
from pedgpt.models.logps import decoder_of


def decoder_layers(lm: nn.Module) -> list[nn.Module]:
    return list(decoder_of(lm).layers)


def mp_policy(fsdp_cfg: dict[str, Any]):
    return MixedPrecisionPolicy(
        param_dtype=DTYPES[fsdp_cfg.get("param_dtype", "bfloat16")],
        reduce_dtype=DTYPES[fsdp_cfg.get("reduce_dtype", "float32")],
    )


def shard(net: nn.Module, lm: nn.Module, mesh: Any, fsdp_cfg: dict[str, Any]) -> None:
    """One FSDP2 unit per decoder layer, plus the root (embedding, final norm, LM head)."""
    policy = mp_policy(fsdp_cfg)
    reshard = bool(fsdp_cfg.get("reshard_after_forward", True))
    for layer in decoder_layers(lm):
        fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard)
    fully_shard(net, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard)


def _safetensors_index(model_dir: str) -> dict[str, str]:
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        return {k: os.path.join(model_dir, v) for k, v in json.load(open(idx))["weight_map"].items()}
    single = os.path.join(model_dir, "model.safetensors")
    if not os.path.exists(single):
        raise FileNotFoundError(f"{model_dir}: no model.safetensors(.index.json) to load weights from")
    with safe_open(single, "pt") as f:
        return {k: single for k in f.keys()}


def local_shard(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The slice of ``full`` that a DTensor ``like`` holds on this rank (plain tensors: all of it)."""
    if not hasattr(like, "device_mesh"):
        return full
    return distribute_tensor(full, like.device_mesh, like.placements, src_data_rank=None).to_local()


@torch.no_grad()
def load_hf_weights(lm: nn.Module, model_dir: str) -> list[str]:
    """Fill ``lm``'s (possibly sharded) parameters from an HF safetensors checkpoint; returns missing names."""
    index = _safetensors_index(model_dir)
    handles: dict[str, Any] = {}
    missing = []
    try:
        for name, p in list(lm.named_parameters()) + list(lm.named_buffers()):
            key = name if name in index else next((k for k in (name.replace("base_layer.", ""),) if k in index), None)
            if key is None:
                missing.append(name)
                continue
            path = index[key]
            if path not in handles:
                handles[path] = safe_open(path, "pt")
            full = handles[path].get_tensor(key).to(p.dtype)
            target = p.to_local() if hasattr(p, "to_local") else p
            target.copy_(local_shard(full, p))
    finally:
        handles.clear()
    return missing


def build_sharded(
    init_dir: str,
    adapt: Callable[[nn.Module], nn.Module],
    wrap: Callable[[nn.Module], nn.Module],
    mesh: Any,
    device: torch.device,
    fsdp_cfg: dict[str, Any],
    trust_remote_code: bool = False,
    activation_checkpointing: bool = False,
    attention: str = "sdpa",
) -> nn.Module:
    """Meta build → adapters (initialised in full) → shard → materialise → load weights shard by shard.

    ``wrap(lm)`` returns the root module (e.g. ``SequenceLogProbs(lm)``); it becomes the root FSDP unit.
    """
    config = AutoConfig.from_pretrained(init_dir, trust_remote_code=trust_remote_code)
    if not trust_remote_code:
        config._attn_implementation = attention
    with torch.device("cpu"), init_empty_weights(include_buffers=False):
        lm = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=trust_remote_code)
    lm.tie_weights()  # an empty-weights build leaves tied embeddings untied; tie before sharding (one root param)
    lm = adapt(lm)
    for _, mod in adapter_modules(lm):  # tiny: real tensors, same seed on every rank
        for n, p in list(mod.named_parameters(recurse=False)):
            setattr(
                mod, n, nn.Parameter(torch.empty(p.shape, dtype=p.dtype, device="cpu"), requires_grad=p.requires_grad)
            )
        mod.reset_parameters()
    if activation_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net = wrap(lm)
    shard(net, lm, mesh, fsdp_cfg)
    keep = {
        n: (t.to_local() if hasattr(t, "to_local") else t).detach().clone()
        for n, t in list(net.named_parameters()) + list(net.named_buffers())
        if not (t.to_local() if hasattr(t, "to_local") else t).is_meta
    }
    net.to_empty(device=device)
    with torch.no_grad():
        for n, t in list(net.named_parameters()) + list(net.named_buffers()):
            if n in keep:
                (t.to_local() if hasattr(t, "to_local") else t).copy_(keep[n])
    params = {n for n, _ in lm.named_parameters()}
    missing = [m for m in load_hf_weights(lm, init_dir) if m in params]  # buffers absent = non-persistent, kept
    adapter_names = {f"{name}.{n}" for name, mod in adapter_modules(lm) for n, _ in mod.named_parameters(recurse=False)}
    not_loaded = [m for m in missing if m not in adapter_names and not m.endswith("lm_head.weight")]
    if not_loaded:
        raise RuntimeError(f"{init_dir}: weights missing from the checkpoint for {not_loaded[:5]}")
    if any(m.endswith("lm_head.weight") for m in missing) and not getattr(lm.config, "tie_word_embeddings", False):
        raise RuntimeError(f"{init_dir}: lm_head.weight missing and embeddings are not tied")
    return net


def gather_full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The consolidated (unsharded) state dict on every rank, on CPU, for an HF export."""
    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
