"""Dry-run planner: the configured model's parameter counts and per-GPU memory, without weights.

The architecture is built on the meta device from the model config's ``arch`` block (for remote-code
architectures such as Baichuan2-13B, a Llama layout with identical parameter shapes stands in). Model
states under full sharding (FSDP, ZeRO-3) with mixed precision, per trainable parameter: bf16 weight (2) +
fp32 master weight (4) + gradient (2) + Adam moments (4 + 4) = 16 bytes; frozen parameters: their bf16
weight (2 bytes). Everything is divided over ``gpus`` = devices × nodes.
"""
from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

BYTES_PER_TRAINABLE = 16
BYTES_PER_FROZEN = 2


def _gpus(cfg: DictConfig) -> int:
    d = cfg.trainer.devices
    devices = int(d) if isinstance(d, int) or (isinstance(d, str) and d.isdigit()) else 1
    return max(1, devices) * max(1, int(cfg.trainer.num_nodes))


def meta_model(cfg: DictConfig):
    from transformers import AutoModelForCausalLM

    from pedgpt.models.build import arch_config

    config = arch_config(cfg.model, vocab_size=int(cfg.model.arch.get("vocab_size", cfg.model.vocab_size)))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def plan(cfg: DictConfig) -> dict[str, Any]:
    from pedgpt.models.build import count_parameters

    model = meta_model(cfg)
    stage = cfg.pipeline[0]
    if stage == "mole":
        from pedgpt.stages.factory import adapter_kwargs
        from pedgpt.adapters import inject_moe_lora
        model = inject_moe_lora(model, **adapter_kwargs(cfg))
    total, trainable = count_parameters(model)
    gpus = _gpus(cfg)
    frozen = total - trainable
    bytes_per_gpu = (BYTES_PER_TRAINABLE * trainable + BYTES_PER_FROZEN * frozen) / gpus
    return {"model": cfg.model.name, "stage": stage, "params_total": total, "params_trainable": trainable,
            "gpus": gpus, "bytes_per_gpu": int(bytes_per_gpu), "gib_per_gpu": round(bytes_per_gpu / 2**30, 2)}
