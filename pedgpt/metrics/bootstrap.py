"""Seeded percentile bootstrap over per-sample values.

One set of resampled index rows (seeded) serves every statistic, so intervals of different keys come from
the same resamples.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np


def resample_indices(n: int, n_resamples: int, seed: int = 0, chunk: int = 100) -> Iterator[np.ndarray]:
    """Index rows drawn with replacement, yielded in chunks of shape (≤chunk, n); same seed → same rows."""
    if n < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap needs n ≥ 1 and n_resamples ≥ 1, got n={n}, n_resamples={n_resamples}")
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_resamples - start), n))


def bootstrap(values: np.ndarray, n_resamples: int, reduce: str = "nanmean", seed: int = 0) -> np.ndarray:
    """Replicates of a column-wise statistic over resampled rows: (N, K) → (n_resamples, K).

    ``reduce``: ``"nanmean"`` (NaN entries are left out, as in the means they bootstrap) or ``"sum"``
    (for sufficient statistics such as sacreBLEU's).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must have shape (N, K), got {values.shape}")
    if reduce not in ("nanmean", "sum"):
        raise ValueError(f"unknown reduce {reduce!r}; choose nanmean or sum")
    n, k = values.shape
    chunk = max(1, min(100, 4_000_000 // max(1, n * k)))  # keep each (chunk, N, K) gather under ~32 MB
    out = []
    for idx in resample_indices(n, n_resamples, seed, chunk):
        sample = values[idx]  # (chunk, N, K)
        if reduce == "sum":
            out.append(sample.sum(axis=1))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only NaN → NaN
                out.append(np.nanmean(sample, axis=1))
    return np.concatenate(out, axis=0)


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval of each column of the replicates (NaN replicates ignored): (B, K) → (K, 2)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column of only NaN → NaN bounds
        return np.nanpercentile(replicates, [100 * alpha, 100 * (1 - alpha)], axis=0).T
