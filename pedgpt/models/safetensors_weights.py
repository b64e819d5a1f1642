"""Reading and writing ``*.safetensors`` checkpoints, single-file or sharded with ``model.safetensors.index.json``.

:class:`SafetensorsCheckpoint` is a lazy name → tensor mapping over a directory (one tensor read at a time), and
:func:`save_safetensors_shards` writes given groups of tensors as ``model.safetensors`` or
``model-0000k-of-0000n.safetensors`` + index, the layout transformers reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ST_SINGLE = "model.safetensors"
ST_INDEX = "model.safetensors.index.json"
DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def safetensors_files(model_dir: str) -> list[str]:
    """File names (relative) of the safetensors weights of ``model_dir``, in index order."""
    index = os.path.join(model_dir, ST_INDEX)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        return list(dict.fromkeys(sorted(weight_map.values())))
    if os.path.exists(os.path.join(model_dir, ST_SINGLE)):
        return [ST_SINGLE]
    raise FileNotFoundError(f"{model_dir}: no {ST_SINGLE} and no {ST_INDEX}")


class SafetensorsCheckpoint(Mapping):
    """Lazy ``{name: tensor}`` over the safetensors files of a directory; ``nbytes(name)`` without reading."""

    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir
        self.files = safetensors_files(model_dir)
        self._where: dict[str, str] = {}
        self._nbytes: dict[str, int] = {}
        self._shape: dict[str, tuple[int, ...]] = {}
        self._dtype: dict[str, str] = {}
        for fname in self.files:
            path = os.path.join(model_dir, fname)
            with open(path, "rb") as f:
                header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if name in self._where:
                    raise ValueError(f"{path}: tensor {name} also in {self._where[name]}")
                self._where[name] = fname
                start, end = info["data_offsets"]
                self._nbytes[name] = end - start
                self._shape[name] = tuple(info["shape"])
                self._dtype[name] = DTYPE_NAMES.get(info["dtype"], info["dtype"].lower())

    def file_of(self, name: str) -> str:
        return self._where[name]

    def nbytes(self, name: str) -> int:
        return self._nbytes[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shape[name]

    def dtype_name(self, name: str) -> str:
        """The torch dtype name (``"bfloat16"``) from the file header."""
        return self._dtype[name]

    def __getitem__(self, name: str) -> torch.Tensor:
        with safe_open(os.path.join(self.model_dir, self._where[name]), framework="pt") as f:
            return f.get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def save_safetensors_shards(
    groups: Iterable[Mapping[str, torch.Tensor]], out_dir: str, n_groups: int | None = None
) -> list[str]:
    """Write each group as one shard; one group → ``model.safetensors`` (no index). Returns the file names.

    ``groups`` may be a generator (one shard in memory at a time) when ``n_groups`` gives its length.
    """
    os.makedirs(out_dir, exist_ok=True)
    if n_groups is None:
        groups = list(groups)
        n_groups = len(groups)
    n = n_groups
    files = [ST_SINGLE] if n == 1 else [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    weight_map, total = {}, 0
    for fname, group in zip(files, groups, strict=True):
        tensors = {}
        for name in group:
            t = group[name].detach().to("cpu").contiguous()
            if t.storage_offset() != 0 or t.untyped_storage().nbytes() != t.numel() * t.element_size():
                t = t.clone()  # safetensors refuses views into shared storage
            tensors[name] = t
        save_file(tensors, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = fname
            total += t.numel() * t.element_size()
        del tensors
    if n > 1:
        with open(os.path.join(out_dir, ST_INDEX), "w", encoding="utf-8") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
    return files
