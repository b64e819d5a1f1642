"""Building and loading causal LMs: tiny models from a config, real ones from a local directory.

A real base model is used as users download it: an official Baichuan2 directory (remote-code layout, ``.bin``
shards, sentencepiece ``tokenizer.model``) is converted once into pedgpt's native ``baichuan2`` layout under the
cache directory (:func:`local_model_dir`); Qwen2.5 and other native transformers models load as they are.
No remote code runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from pedgpt.common.errors import ModelPathError
from pedgpt.models import attention as _attention  # noqa: F401  (registers the ``auto`` / ``flex`` implementations)
from pedgpt.models.baichuan2.convert import ensure_native

MODEL_DIR_ENV = "PEDGPT_MODEL_DIR"
CACHE_DIR_ENV = "PEDGPT_CACHE_DIR"


def default_cache_dir() -> str:
    """``$PEDGPT_CACHE_DIR``, else ``~/.cache/pedgpt`` (the training default of ``paths.cache_dir``)."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "pedgpt")


def local_model_dir(path: str, cache_dir: str | None = None, log: Callable[[str], Any] = print) -> str:
    """The directory to load ``path`` from: itself, or (official Baichuan2) its native conversion in the cache,
    made once; one line says what was converted, from where, to where."""
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ModelPathError(f"{path}: not a model directory (no config.json)")
    return ensure_native(path, cache_dir or default_cache_dir(), log=log)


def resolve_model_path(model_cfg: DictConfig) -> str:
    """The local directory of a real base model as downloaded: ``model.path``, else
    ``$PEDGPT_MODEL_DIR/<model.dir_name>``."""
    path = model_cfg.get("path")
    if not path and os.environ.get(MODEL_DIR_ENV):
        path = os.path.join(os.environ[MODEL_DIR_ENV], model_cfg.get("dir_name") or "")
    if not path or not os.path.exists(os.path.join(path, "config.json")):
        shown = path or "<unset>"
        raise ModelPathError(
            f"model weights for {model_cfg.get('name')!r} not found at {shown}: set model.path=/local/dir "
            f"or {MODEL_DIR_ENV}=/dir/holding/{model_cfg.get('dir_name') or '<model>'} (a directory with "
            f"config.json and the weights); nothing is downloaded"
        )
    return path


def arch_config(model_cfg: DictConfig, vocab_size: int | None = None, tokenizer: Any = None) -> PretrainedConfig:
    """A transformers config for the ``model.arch`` block (config kwargs + ``model_type``; null keys left out)."""
    node: Any = OmegaConf.to_container(model_cfg.arch, resolve=True)
    arch = {str(k): v for k, v in node.items() if v is not None}
    model_type = arch.pop("model_type")
    if vocab_size is not None:
        arch["vocab_size"] = vocab_size
    if tokenizer is not None:
        arch.update(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    return AutoConfig.for_model(model_type, **arch)


def build_from_config(config: PretrainedConfig, seed: int | None = None, dtype: torch.dtype = torch.float32) -> Any:
    """A freshly initialised causal LM for ``config`` (seeded)."""
    if seed is not None:
        torch.manual_seed(seed)
    config._attn_implementation = "sdpa"
    return AutoModelForCausalLM.from_config(config, dtype=dtype)


def load_pretrained(
    path: str, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False, attention: str = "sdpa"
) -> Any:
    """Load an HF-format export or base model from a local directory (safetensors), with the attention
    implementation ``attention`` (``model.attention``): ``auto`` / ``flex`` (packed batches attend within each
    document without an L × L mask, :mod:`pedgpt.models.attention`; everything else is transformers' SDPA),
    ``sdpa`` or ``eager`` (dense masks), or any other transformers implementation."""
    if not os.path.exists(os.path.join(path, "config.json")):
        raise ModelPathError(f"{path}: not an HF model directory (no config.json)")
    return AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        use_safetensors=True,
        attn_implementation=attention if not trust_remote_code else None,
    )


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared tensors counted once."""
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return total, trainable
