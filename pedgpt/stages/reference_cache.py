"""Reference log-probs for DFPO, computed once and cached on disk under a fingerprint.

The fingerprint covers everything that changes the numbers: the encoded data (token ids and labels, which
already reflect the template, tokenizer, max length and truncation rule) with those settings named, the dtype
and attention implementation of the reference pass, and a hash of every file of the reference's directory that
the model's numbers depend on — weights in any format, ``config.json``, tokenizer files, model code (``*.py``) —
i.e. all files except pedgpt's own bookkeeping. A cache file stores its fingerprint in its metadata and is never
used under another one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence

import torch

from pedgpt.common.files import file_sha256
from pedgpt.data.collate import collate_preference
from pedgpt.data.token_store import StoredExamples
from pedgpt.models.exports import COMPLETE

log = logging.getLogger(__name__)


#: files of an export that say nothing about its numbers (pedgpt's completion marker holds run paths)
BOOKKEEPING = (COMPLETE, "README.md")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def model_hash(model_dir: str, cache_dir: str | None = None) -> str:
    """sha256 over the name and content of every file of ``model_dir`` (sub-directories included) except
    :data:`BOOKKEEPING`: weights, ``config.json``, tokenizer files, model code. Large files hash once
    (memoised under ``cache_dir`` by path, size and mtime)."""
    files = sorted(
        os.path.relpath(os.path.join(root, f), model_dir)
        for root, _, names in os.walk(model_dir)
        for f in names
        if f not in BOOKKEEPING
    )
    if not any(f.endswith(WEIGHT_SUFFIXES) for f in files):
        raise FileNotFoundError(f"{model_dir}: no weight files to fingerprint the reference model")
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        h.update(file_sha256(os.path.join(model_dir, f), cache_dir).encode())
    return h.hexdigest()


def data_hash(examples: Sequence[dict] | str) -> str:
    """sha256 of the encoded pairs; a string is already the data's digest (a token store's key)."""
    if isinstance(examples, str):
        return examples
    h = hashlib.sha256()
    for e in examples:
        for k in ("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels"):
            h.update(json.dumps(e[k]).encode())
    return h.hexdigest()


def fingerprint(
    examples: Sequence[dict] | str,
    *,
    template: str,
    tokenizer_fp: str,
    max_len: int,
    truncation: str,
    dtype: str,
    attention: str,
    ref_dir: str,
    cache_dir: str | None = None,
) -> str:
    """The cache key of a reference pass (24 hex digits)."""
    blob = json.dumps(
        {
            "data": data_hash(examples),
            "template": template,
            "tokenizer": tokenizer_fp,
            "max_len": max_len,
            "truncation": truncation,
            "dtype": dtype,
            "attention": attention,
            "model": model_hash(ref_dir, cache_dir),
            "version": 2,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@torch.no_grad()
def compute_reference_logps(
    ref_net: torch.nn.Module, examples: Sequence[dict], pad_id: int, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference-only pass: (chosen, rejected) summed log-probs, each (N,) fp32, in dataset order."""
    ref_net.eval()
    chosen, rejected = [], []
    for i in range(0, len(examples), batch_size):
        b = collate_preference(examples[i : i + batch_size], pad_id)
        dev = next(ref_net.parameters()).device
        logp, _ = ref_net(b["input_ids"].to(dev), b["labels"].to(dev), b["attention_mask"].to(dev))
        k = logp.shape[0] // 2
        chosen.append(logp[:k].float().cpu())
        rejected.append(logp[k:].float().cpu())
    return torch.cat(chosen), torch.cat(rejected)


def cache_path(cache_dir: str, fp: str) -> str:
    return os.path.join(cache_dir, "ref_logps", f"{fp}.safetensors")


def load_cached(cache_dir: str, fp: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    from safetensors import safe_open

    path = cache_path(cache_dir, fp)
    if not os.path.exists(path):
        return None
    with safe_open(path, "pt") as f:
        if (f.metadata() or {}).get("fingerprint") != fp:
            log.warning("reference cache %s has another fingerprint; ignoring it", path)
            return None
        return f.get_tensor("chosen"), f.get_tensor("rejected")


def save_cached(cache_dir: str, fp: str, chosen: torch.Tensor, rejected: torch.Tensor) -> str:
    from safetensors.torch import save_file

    path = cache_path(cache_dir, fp)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    save_file({"chosen": chosen.contiguous(), "rejected": rejected.contiguous()}, tmp, metadata={"fingerprint": fp})
    os.replace(tmp, path)
    return path


def attach(examples: Sequence[dict], chosen: torch.Tensor, rejected: torch.Tensor) -> None:
    """Give every pair its reference log-probs (``ref_chosen``, ``ref_rejected``): as columns of stored examples
    (:class:`~pedgpt.data.token_store.StoredExamples`), or written into in-memory example dicts."""
    if len(examples) != chosen.numel():
        raise ValueError(f"reference cache holds {chosen.numel()} pairs, the data {len(examples)}")
    if isinstance(examples, StoredExamples):
        examples.set_column("ref_chosen", chosen.tolist())
        examples.set_column("ref_rejected", rejected.tolist())
        return
    for e, c, r in zip(examples, chosen.tolist(), rejected.tolist()):
        e["ref_chosen"], e["ref_rejected"] = c, r
