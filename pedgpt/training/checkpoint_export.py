"""An HF export (full model, adapter, or adapter merged for one task) from any saved training checkpoint
(the library behind ``python -m pedgpt.export``).

``ckpt`` is a single-file Lightning checkpoint (``step=N.ckpt``) or a sharded (distributed checkpoint)
directory written under FSDP. The model is rebuilt from the stage's starting export recorded in the
checkpoint; a full model is written with ``save_pretrained`` + tokenizer, a MoE-LoRA adapter as an
adapter export — or, with ``merge_task``, merged into plain weights for that task (task router only).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from pedgpt.adapters import inject_moe_lora, merge_for_task
from pedgpt.common.errors import CheckpointError, ModelPathError
from pedgpt.models.build import load_pretrained
from pedgpt.models.exports import assert_finite, write_adapter_export
from pedgpt.models.tokenizer import load_tokenizer
from pedgpt.training.checkpointing import verify_checkpoint

PREFIX = "net.lm."


def load_checkpoint_state(ckpt: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model state dict with ``net.lm.`` keys, checkpoint metadata) from a file or a sharded directory."""
    if not os.path.exists(ckpt):
        raise ModelPathError(f"ckpt={ckpt}: no such checkpoint")
    verify_checkpoint(ckpt)
    if os.path.isdir(ckpt):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "full.pt")
            dcp_to_torch_save(ckpt, path)
            state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        meta = torch.load(os.path.join(ckpt, "meta.pt"), map_location="cpu", weights_only=True)
        return state, meta
    full = torch.load(ckpt, map_location="cpu", weights_only=True)
    return full["state_dict"], full


def export_checkpoint(ckpt: str, out: str, merge_task: str | None = None) -> str:
    state, meta = load_checkpoint_state(ckpt)
    info = meta.get("pedgpt") or {}
    if "init_dir" not in info:
        raise CheckpointError(f"{ckpt}: no pedgpt metadata (init_dir); was it written by pedgpt.train?")
    weights = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    assert_finite(weights, ckpt)
    lm = load_pretrained(info["init_dir"])
    adapter = (info.get("model") or {}).get("adapter")
    if adapter:
        lm = inject_moe_lora(lm, **adapter)
    missing, unexpected = lm.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not (m.endswith("lm_head.weight") and lm.config.tie_word_embeddings)]
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt}: does not match the model of {info['init_dir']} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    tokenizer = load_tokenizer(info["init_dir"])
    if merge_task and not adapter:
        raise ValueError(f"merge_task={merge_task}: {ckpt} holds no adapter to merge")
    if adapter and not merge_task:
        write_adapter_export(lm, out, tokenizer, info["init_dir"], writer=True)
        return out
    os.makedirs(out, exist_ok=True)
    if adapter:
        lm = merge_for_task(lm, merge_task)
    lm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
