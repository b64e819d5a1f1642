"""MoE-of-LoRA adapters: a standalone module (no patched peft), a router registry and model-level helpers."""

from pedgpt.adapters.inject import (
    adapter_modules,
    adapters_disabled,
    clear_task_ids,
    commit_router_stats,
    inject_moe_lora,
    load_adapter,
    merge_for_task,
    router_aux_loss,
    router_stats,
    save_adapter,
    set_task_ids,
    set_token_mask,
    trainable_summary,
)
from pedgpt.adapters.moe_lora import MoELoRALinear
from pedgpt.adapters.routers import Router, get_router, register_router

__all__ = [
    "MoELoRALinear",
    "Router",
    "adapter_modules",
    "adapters_disabled",
    "clear_task_ids",
    "commit_router_stats",
    "get_router",
    "inject_moe_lora",
    "load_adapter",
    "merge_for_task",
    "register_router",
    "router_aux_loss",
    "router_stats",
    "save_adapter",
    "set_task_ids",
    "set_token_mask",
    "trainable_summary",
]
