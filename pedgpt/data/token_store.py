"""Tokenize once, read everywhere: a stage's encoded examples in a memory-mapped Arrow store under ``paths.cache_dir``.

A store is a directory ``<cache_dir>/tokens/<stage>-<key>/`` holding, per split (``train``, ``dev``), a HF
``datasets`` dataset saved with ``save_to_disk`` (Arrow files, opened memory-mapped by ``load_from_disk``), for a
packed stage the packing index ``<split>_rows`` (each row: the indices of the documents packed into it, made
once by :func:`~pedgpt.data.packing.pack_greedy`), and ``store.json`` (the key, what went into it, the counts
and skip reasons of the build).

The key is the sha256 of everything the encoded examples depend on (:func:`store_key`): the stage and its
encoding settings, the data's identity (the sha256 of each corpus file from its manifest, or the demo records),
the tokenizer's fingerprint, the template, ``max_len`` and :data:`STORE_VERSION`. A build writes into a
temporary sibling directory and renames it into place as its last act, under an exclusive file lock, so the
processes of a run (the ranks of one node, or a shared file system with working ``flock``) tokenize once and a
killed build is never read. Tokenization runs as a batched ``Dataset.map`` over ``num_proc`` processes.

Reading: :class:`StoredExamples` and :class:`PackedRows` are read-only sequences over the store; a rank's
sampler asks for its own indices only, so it touches (pages in) only its share, and resident memory stays flat
in the corpus size.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, Features, Value, disable_progress_bars, load_from_disk
from datasets import Sequence as ArrowList

from pedgpt.common.files import atomic_write_text
from pedgpt.data.packing import pack_greedy, packing_efficiency

log = logging.getLogger(__name__)

#: bump when the layout or the encoding of a store changes: every older store becomes stale
STORE_VERSION = 1
SPLITS = ("train", "dev")
#: column kinds an :class:`Encoding` declares: token-id lists and one integer per example
KINDS = {"ids": ArrowList(Value("int32")), "int": Value("int32")}
BATCH = 1000  # items per ``map`` batch


@dataclass
class Encoding:
    """What a stage tokenizes: per split its ``items`` (texts, records), ``encode`` (a batch of items → per item
    either its examples — a dict, or a list of dicts when one item yields several — or the reason it is skipped,
    a string), the example ``columns`` (name → ``"ids"`` or ``"int"``) and ``info`` (counts for the report)."""

    items: dict[str, Sequence[Any]]
    encode: Callable[[Sequence[Any]], list[Any]]
    columns: dict[str, str]
    info: dict[str, Any]


def store_key(material: dict[str, Any]) -> str:
    """24 hex digits of the sha256 of ``material`` (JSON, sorted keys) and the store version."""
    blob = json.dumps({"store_version": STORE_VERSION, **material}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def records_digest(records: Sequence[Any]) -> str:
    """sha256 of records (dataclasses or JSON values) by their ``repr``: the identity of in-memory data."""
    h = hashlib.sha256()
    for r in records:
        h.update(repr(r).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _rows(results: Sequence[Any], columns: dict[str, str]) -> dict[str, list]:
    """Per-item results → the columns of a ``map`` batch: one row per example and one per skipped item
    (``skip`` = its reason, empty columns), so that every item's fate is counted."""
    out: dict[str, list] = {name: [] for name in columns}
    out["skip"] = []
    for r in results:
        if isinstance(r, str):
            for name, kind in columns.items():
                out[name].append([] if kind == "ids" else 0)
            out["skip"].append(r)
            continue
        for ex in [r] if isinstance(r, dict) else r:
            for name in columns:
                out[name].append(ex[name])
            out["skip"].append("")
    return out


def encode_split(items: Sequence[Any], encoding: Encoding, num_proc: int) -> tuple[Dataset, Counter]:
    """Tokenize ``items`` with ``encoding.encode`` in batches over ``num_proc`` processes → (examples, skips)."""
    features = Features({**{n: KINDS[k] for n, k in encoding.columns.items()}, "skip": Value("string")})
    index = Dataset.from_dict({"item": np.arange(len(items), dtype=np.int64)})

    def encode_batch(batch: dict[str, list]) -> dict[str, list]:
        return _rows(encoding.encode([items[i] for i in batch["item"]]), encoding.columns)

    procs = max(1, min(num_proc, -(-len(items) // BATCH)))
    ds = index.map(
        encode_batch,
        batched=True,
        batch_size=BATCH,
        remove_columns=["item"],
        features=features,
        num_proc=procs if procs > 1 else None,
        new_fingerprint=hashlib.sha256(os.urandom(16)).hexdigest()[:16],  # never hash the items themselves
        keep_in_memory=False,
    )
    counts = pc.value_counts(ds.data.column("skip")).to_pylist()
    skipped = Counter({c["values"]: c["counts"] for c in counts if c["values"]})
    if skipped:
        ds = ds.filter(lambda s: [x == "" for x in s], input_columns="skip", batched=True, batch_size=BATCH)
        # the kept rows themselves, so that ``ds.data`` (lengths, packing) is theirs; none kept: an empty table
        ds = ds.flatten_indices() if len(ds) else Dataset.from_dict({n: [] for n in features}, features=features)
    return ds.remove_columns("skip"), skipped


def lengths_of(ds: Dataset, column: str = "input_ids") -> list[int]:
    """Token count of every example (from the Arrow offsets; no rows are decoded)."""
    return pc.list_value_length(ds.data.column(column)).to_numpy(zero_copy_only=False).tolist()


@dataclass
class TokenStore:
    """An opened store: its directory, key, ``info`` (counts, skip reasons, packing efficiency) and whether this
    process built it (``status`` ``built``) or found it (``cached``)."""

    path: str
    key: str
    info: dict[str, Any]
    status: str
    columns: dict[str, str]

    def split(self, split: str) -> Dataset:
        return load_from_disk(os.path.join(self.path, split))

    def rows(self, split: str) -> Dataset | None:
        """The packing index of ``split`` (column ``docs``), or None for an unpacked store."""
        path = os.path.join(self.path, f"{split}_rows")
        return load_from_disk(path) if os.path.isdir(path) else None


def build_store(path: str, encoding: Encoding, num_proc: int, pack_len: int | None) -> dict[str, Any]:
    """Write a complete store into the empty directory ``path``; returns its ``info``."""
    info = dict(encoding.info)
    skipped: Counter = Counter()
    for split in SPLITS:
        ds, skips = encode_split(encoding.items[split], encoding, num_proc)
        skipped.update(skips)
        ds.save_to_disk(os.path.join(path, split), num_shards=1 if not len(ds) else None)  # an empty split: 1 file
        info[f"{'val' if split == 'dev' else split}_examples"] = len(ds)
        if pack_len:
            lengths = lengths_of(ds)
            rows = pack_greedy(lengths, pack_len)
            Dataset.from_dict({"docs": rows}, features=Features({"docs": ArrowList(Value("int64"))})).save_to_disk(
                os.path.join(path, f"{split}_rows")
            )
            prefix = "val" if split == "dev" else split
            info[f"{prefix}_packing_efficiency"] = round(packing_efficiency(lengths, rows, pack_len), 4)
    info["skipped"] = {k: v for k, v in sorted(skipped.items()) if v}
    return info


def open_store(
    cache_dir: str,
    name: str,
    material: dict[str, Any],
    encoding: Callable[[], Encoding],
    num_proc: int = 1,
    pack_len: int | None = None,
    say: Callable[[str], Any] = print,
) -> TokenStore:
    """The store of ``name`` for ``material`` under ``cache_dir/tokens``, built first when missing.

    ``encoding`` is called only to build (a cached start never reads the corpus); ``pack_len`` makes a packing
    index for rows of that many tokens. One process builds while the others wait on the lock, then open it. Says
    one line: ``token store <name> <key>: cached|built (…) → <path>``.
    """
    key = store_key({"stage": name, **material, "pack_len": pack_len})
    root = os.path.join(os.path.abspath(cache_dir), "tokens")
    path = os.path.join(root, f"{name}-{key}")
    os.makedirs(root, exist_ok=True)
    disable_progress_bars()
    status = "cached"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in glob.glob(os.path.join(root, f".{name}-{key}.tmp-*")):  # builds killed before their rename
            shutil.rmtree(stale, ignore_errors=True)
        if not os.path.isfile(os.path.join(path, "store.json")):
            shutil.rmtree(path, ignore_errors=True)  # never complete (a build is renamed into place whole)
            tmp = tempfile.mkdtemp(prefix=f".{name}-{key}.tmp-", dir=root)
            try:
                enc = encoding()
                info = build_store(tmp, enc, num_proc, pack_len)
                atomic_write_text(
                    os.path.join(tmp, "store.json"),
                    json.dumps(
                        {"key": key, "material": material, "pack_len": pack_len, "columns": enc.columns, "info": info},
                        indent=1,
                    ),
                )
                os.replace(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            status = "built"
    with open(os.path.join(path, "store.json"), encoding="utf-8") as f:
        meta = json.load(f)
    info = meta["info"]
    say(
        f"token store {name} {key}: {status} ({info['train_examples']:,} train / {info['val_examples']:,} dev examples) -> {path}"
    )
    return TokenStore(path, key, info, status, meta["columns"])


class StoredExamples(Sequence):
    """The examples of one store split as a read-only sequence of dicts (lists of ints), read from the
    memory-mapped Arrow files on demand. ``labels_from_inputs``: the labels are the inputs (continued
    pre-training); ``with_index``: each example carries ``index``, its position (the key of per-example values
    such as cached reference log-probs, added with :meth:`set_column`). ``key``: the store's key."""

    def __init__(self, ds: Dataset, key: str = "", labels_from_inputs: bool = False, with_index: bool = False) -> None:
        self.ds, self.key = ds, key  # key: the store's (the identity of the data)
        self.labels_from_inputs, self.with_index = labels_from_inputs, with_index
        self.extra: dict[str, Sequence[Any]] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def _complete(self, row: dict[str, Any], i: int) -> dict[str, Any]:
        if self.labels_from_inputs:
            row["labels"] = list(row["input_ids"])
        if self.with_index:
            row["index"] = i
        for name, values in self.extra.items():
            row[name] = values[i]
        return row

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.__getitems__(list(range(len(self)))[i])
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"example {i} of {len(self)}")
        i %= len(self)
        return self._complete(self.ds[i], i)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Several examples in one Arrow read (the DataLoader asks for a batch at once)."""
        indices = [int(i) for i in indices]
        if not indices:
            return []
        cols = self.ds[indices]
        return [self._complete({k: v[j] for k, v in cols.items()}, i) for j, i in enumerate(indices)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), BATCH):
            yield from self.__getitems__(range(start, min(len(self), start + BATCH)))

    def set_column(self, name: str, values: Sequence[Any]) -> None:
        """Attach one value per example (kept in memory; e.g. reference log-probs)."""
        if len(values) != len(self):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(self)} examples")
        self.extra[name] = values


class PackedRows(Sequence):
    """Packed rows of a store split: item ``r`` is the list of examples packed into row ``r``."""

    def __init__(self, examples: StoredExamples, rows: Dataset) -> None:
        self.examples, self.rows = examples, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, r: Any) -> Any:
        if isinstance(r, slice):
            return [self[j] for j in range(len(self))[r]]
        return self.examples.__getitems__(self.rows[int(r)]["docs"])

    def __getitems__(self, rows: Sequence[int]) -> list[list[dict[str, Any]]]:
        return [self[r] for r in rows]
