"""Train / dev / test assignment without leaks.

* A record's upstream ``split`` is honoured through the ``upstream`` map: held-out names (``dev``,
  ``validation``, ``test`` …) map to a held-out split and never reach training. A name mapped to
  ``hash`` (by default ``train``: upstream allows training on it) is assigned like a record without one.
* Otherwise the split comes from a stable hash of the record's **group key** — the disease for
  KG-derived items (``meta.disease``), the dialogue for consultations (``meta.dialogue``), else the id —
  cut by the configured ratios. Items of one group share a split, and the split of a group depends only
  on its key, the ratios and the salt: adding data never moves an existing record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pedgpt.data.schema import SPLITS, Record

HASH = "hash"
DEFAULT_UPSTREAM = {
    "train": HASH,
    "dev": "dev",
    "valid": "dev",
    "validation": "dev",
    "val": "dev",
    "test": "test",
    "eval": "test",
}


@dataclass(frozen=True)
class SplitConfig:
    ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.9, "dev": 0.05, "test": 0.05})
    upstream: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UPSTREAM))
    salt: str = "pedcorpus"

    def __post_init__(self) -> None:
        unknown = (set(self.ratios) | set(self.upstream.values())) - set(SPLITS) - {HASH}
        if unknown:
            raise ValueError(f"splits: unknown split name(s) {sorted(unknown)}; use {SPLITS}")
        if abs(sum(self.ratios.values()) - 1.0) > 1e-6 or min(self.ratios.values()) < 0:
            raise ValueError(f"splits.ratios must be non-negative and sum to 1, got {dict(self.ratios)}")


def group_key(record: Record) -> str:
    """The leak-free grouping key: ``meta.disease`` > ``meta.dialogue`` > ``source/id``."""
    meta: dict[str, Any] = getattr(record, "meta", None) or {}
    if meta.get("disease"):
        return f"disease:{meta['disease']}"
    if meta.get("dialogue"):
        return f"dialogue:{meta['dialogue']}"
    return f"id:{record.source}/{record.id}"


def hash_unit(key: str, salt: str) -> float:
    """A uniform number in [0, 1) from sha256(salt, key)."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(key: str, cfg: SplitConfig) -> str:
    """Cut [0, 1) into consecutive intervals train, dev, test (in SPLITS order) by the ratios."""
    u, edge = hash_unit(key, cfg.salt), 0.0
    named = [s for s in SPLITS if cfg.ratios.get(s, 0) > 0]
    for s in named:
        edge += cfg.ratios[s]
        if u < edge:
            return s
    return named[-1]


def resolve(upstream: str | None, key: str, cfg: SplitConfig) -> str:
    """The split for a record with upstream split ``upstream`` (or None) and group key ``key``."""
    if upstream:
        name = cfg.upstream.get(str(upstream).strip().lower())
        if name is None:
            raise ValueError(f"unknown upstream split {upstream!r} (group {key}); map it under splits.upstream")
        if name != HASH:
            return name
    return hash_split(key, cfg)


def assign(record: Record, cfg: SplitConfig) -> str:
    return resolve(record.split, group_key(record), cfg)
