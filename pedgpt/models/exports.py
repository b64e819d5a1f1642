"""Stage exports on disk: what marks one complete, how an adapter export points at its base, and loading one for
inference (a full HF model, or a frozen base + MoE-LoRA adapter).

Used by the pipeline, evaluation, chat and the server, so every producer and consumer agrees on the format.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import torch

from pedgpt.adapters import load_adapter, save_adapter
from pedgpt.common.errors import ModelPathError, NonFiniteError
from pedgpt.data.templates import DEFAULT_TEMPLATE, ChatTemplate, get_template
from pedgpt.models.build import load_pretrained, local_model_dir
from pedgpt.models.tokenizer import load_tokenizer

#: written last into an export directory: the export is complete (a stage whose export has it is not re-run)
COMPLETE = "pedgpt_complete.json"
#: an adapter export's pointer to the frozen base it was trained on
EXPORT_INFO = "pedgpt_export.json"


def assert_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse, in one line, to export weights holding NaN or infinity (a damaged checkpoint, a diverged run)."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise NonFiniteError(f"{where}: {name} holds non-finite values; refusing to export it")


def export_complete(path: str) -> bool:
    return os.path.exists(os.path.join(path, COMPLETE))


def mark_complete(path: str, **info: Any) -> None:
    with open(os.path.join(path, COMPLETE), "w") as f:
        json.dump(info, f, indent=1)


def write_adapter_export(lm: torch.nn.Module, out_dir: str, tokenizer: Any, base_dir: str, writer: bool) -> None:
    """Adapter tensors + config, the tokenizer, and a pointer to the frozen base it was trained on.

    Every rank gathers the (possibly sharded) adapter tensors; only ``writer`` keeps the files.
    """
    if not writer:
        with tempfile.TemporaryDirectory() as scratch:
            save_adapter(lm, scratch)
        return
    os.makedirs(out_dir, exist_ok=True)
    save_adapter(lm, out_dir)
    tokenizer.save_pretrained(out_dir)
    with open(os.path.join(out_dir, EXPORT_INFO), "w") as f:
        json.dump({"type": "moe_lora_adapter", "base_model": os.path.abspath(base_dir)}, f, indent=1)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    template: ChatTemplate
    model_dir: str
    adapter_dir: str | None = None

    @property
    def has_adapter(self) -> bool:
        return self.adapter_dir is not None


def template_of(tokenizer: Any) -> ChatTemplate:
    """The chat template a tokenizer was saved with (``pedgpt_template``), else the default."""
    name = tokenizer.init_kwargs.get("pedgpt_template") if hasattr(tokenizer, "init_kwargs") else None
    return get_template(name or DEFAULT_TEMPLATE)


def is_adapter_export(path: str) -> bool:
    info = os.path.join(path, EXPORT_INFO)
    return os.path.exists(info) and json.load(open(info)).get("type") == "moe_lora_adapter"


def load_for_inference(
    model_dir: str,
    adapter_dir: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """``model_dir``: a full export or base model (an official Baichuan2 download is converted once), or an adapter
    export (its base is read from ``pedgpt_export.json``)."""
    if not os.path.isdir(model_dir):
        raise ModelPathError(f"{model_dir}: no such model directory")
    if adapter_dir is None and is_adapter_export(model_dir):
        adapter_dir, model_dir = model_dir, json.load(open(os.path.join(model_dir, EXPORT_INFO)))["base_model"]
    model_dir = local_model_dir(model_dir)  # an official Baichuan2 download: its native copy
    tok_dir = (
        adapter_dir if adapter_dir and os.path.exists(os.path.join(adapter_dir, "tokenizer_config.json")) else model_dir
    )
    tokenizer = load_tokenizer(tok_dir, trust_remote_code)
    model = load_pretrained(model_dir, dtype, trust_remote_code)
    if adapter_dir:
        model = load_adapter(model, adapter_dir)
    model.to(device).eval()
    return LoadedModel(model, tokenizer, template_of(tokenizer), model_dir, adapter_dir)


def newest_run_export(output_root: str = "outputs") -> str | None:
    """The final export of the newest complete pipeline run under ``output_root`` (by report time)."""
    reports = sorted(glob.glob(os.path.join(output_root, "**", "report.json"), recursive=True), key=os.path.getmtime)
    for rep in reversed(reports):
        r = json.load(open(rep))
        for stage in reversed(r.get("pipeline", [])):
            exp = r.get(stage, {}).get("export_dir")
            if exp and os.path.isdir(exp):
                return exp
    return None
