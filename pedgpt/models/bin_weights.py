"""Reading and writing ``pytorch_model*.bin`` checkpoints (the official Baichuan2 download layout) safely.

Reading goes through ``torch.load(path, map_location="cpu", weights_only=True, mmap=True)`` only: a pickle that
needs anything beyond tensors and plain containers is refused with :class:`UnsafeCheckpointError` (one line naming
the file); nothing ever falls back to unrestricted unpickling. Writing produces ``pytorch_model.bin`` or
``pytorch_model-0000k-of-0000n.bin`` shards with a ``pytorch_model.bin.index.json`` (``metadata.total_size``,
``weight_map``), sharded by a byte budget.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Iterable, Iterator, Mapping

import torch

BIN_SINGLE = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
DEFAULT_SHARD_BYTES = 10 * 2**30


class UnsafeCheckpointError(ValueError):
    """A ``.bin`` file that cannot be read as plain tensors with ``weights_only=True``."""


def natural_key(name: str) -> list:
    """Sort key that orders ``layers.10`` after ``layers.9``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def checkpoint_order(name: str) -> tuple:
    """Decoder tensors (``model.*``) in natural order first, then the rest (``lm_head``), as in the downloads."""
    return (not name.startswith("model."), natural_key(name))


def bin_files(model_dir: str) -> list[str]:
    """The ``.bin`` weight files of ``model_dir`` in index order (sharded) or ``[pytorch_model.bin]``."""
    index = os.path.join(model_dir, BIN_INDEX)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no weight_map")
        names = sorted(set(weight_map.values()), key=natural_key)
        missing = [n for n in names if not os.path.exists(os.path.join(model_dir, n))]
        if missing:
            raise FileNotFoundError(f"{model_dir}: shards named in {BIN_INDEX} are missing: {', '.join(missing)}")
        return [os.path.join(model_dir, n) for n in names]
    single = os.path.join(model_dir, BIN_SINGLE)
    if os.path.exists(single):
        return [single]
    raise FileNotFoundError(f"{model_dir}: no {BIN_SINGLE} and no {BIN_INDEX}")


def _refusal_reason(err: Exception) -> str:
    text = str(err)
    for line in text.splitlines():
        if "WeightsUnpickler error" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()
    return text.splitlines()[0].strip() if text.strip() else type(err).__name__


def load_bin_file(path: str) -> dict[str, torch.Tensor]:
    """One ``.bin`` file as ``{name: tensor}`` (memory-mapped, CPU); refuses anything but plain tensors."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as err:
        raise UnsafeCheckpointError(
            f"{path}: refused to load: not a plain tensor checkpoint readable with "
            f"weights_only=True ({_refusal_reason(err)})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UnsafeCheckpointError(
            f"{path}: refused to load: expected a dict of name -> tensor, got {type(state).__name__}"
        )
    return dict(state)


def iter_bin_shards(model_dir: str) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """``(file name, tensors)`` per ``.bin`` file of ``model_dir``, one file in memory at a time."""
    for path in bin_files(model_dir):
        yield os.path.basename(path), load_bin_file(path)


def load_bin_state_dict(model_dir: str) -> dict[str, torch.Tensor]:
    """Every tensor of a single-file or sharded ``.bin`` checkpoint."""
    state: dict[str, torch.Tensor] = {}
    for name, shard in iter_bin_shards(model_dir):
        dup = sorted(set(shard) & set(state))
        if dup:
            raise ValueError(f"{os.path.join(model_dir, name)}: tensors repeated across shards: {', '.join(dup[:5])}")
        state.update(shard)
    return state


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def plan_shards(sizes: Iterable[tuple[str, int]], max_shard_bytes: int) -> list[list[str]]:
    """Group names (in the given order) into shards of at most ``max_shard_bytes`` (a larger tensor gets its own)."""
    shards: list[list[str]] = []
    used = 0
    for name, size in sizes:
        if not shards or (used + size > max_shard_bytes and shards[-1]):
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


def save_bin_shards(
    tensors: Mapping[str, torch.Tensor], out_dir: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> list[str]:
    """Write ``tensors`` as official ``.bin`` file(s) into ``out_dir``; returns the file names written.

    One shard → ``pytorch_model.bin`` (no index, like the official 7B download); several →
    ``pytorch_model-0000k-of-0000n.bin`` + ``pytorch_model.bin.index.json``. Tensors are written in natural name
    order (decoder first, ``lm_head`` last), each as its own contiguous storage (no views of larger buffers).
    ``tensors`` may be a lazy mapping; each tensor is read once, when its shard is written.
    """
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(tensors.keys(), key=checkpoint_order)
    sizes = [(n, _mapping_tensor_bytes(tensors, n)) for n in names]
    groups = plan_shards(sizes, max_shard_bytes)
    files = (
        [BIN_SINGLE]
        if len(groups) == 1
        else [f"pytorch_model-{i:05d}-of-{len(groups):05d}.bin" for i in range(1, len(groups) + 1)]
    )
    weight_map, total = {}, 0
    for fname, group in zip(files, groups, strict=True):
        shard = {n: _own_storage(tensors[n]) for n in group}
        torch.save(shard, os.path.join(out_dir, fname))
        for n, t in shard.items():
            weight_map[n] = fname
            total += tensor_bytes(t)
        del shard
    if len(files) > 1:
        with open(os.path.join(out_dir, BIN_INDEX), "w", encoding="utf-8") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
    return files


def _mapping_tensor_bytes(tensors: Mapping[str, torch.Tensor], name: str) -> int:
    sizer = getattr(tensors, "nbytes", None)
    return sizer(name) if callable(sizer) else tensor_bytes(tensors[name])


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the CPU, contiguous, and the sole user of its storage (torch.save writes whole storages)."""
    t = t.detach().to("cpu").contiguous()
    if t.storage_offset() != 0 or t.untyped_storage().nbytes() != tensor_bytes(t):
        t = t.clone()
    return t
