"""Sequence packing with no attention across document boundaries.

Restarted ``position_ids`` alone do not stop cross-document attention in the eager or SDPA paths of
transformers, so a packed row also carries a 4D additive mask that is block-diagonal and causal: a token
attends only to earlier tokens of its own document. transformers (4.56+ and 5.x) passes a 4D mask through
unchanged, so packed logits equal the unpacked logits of every document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pedgpt.common.constants import IGNORE_INDEX


def pack_greedy(lengths: Sequence[int], max_len: int) -> list[list[int]]:
    """Assign documents to rows of at most ``max_len`` tokens: first-fit decreasing, deterministic.

    Returns rows as lists of document indices. Documents longer than ``max_len`` must be split or
    dropped by the caller before packing. The first row with room is found by descending a max-tree of the
    rows' free space (O(log rows) per document), so a corpus of millions of documents packs in seconds.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    size = 1
    while size < max(1, len(order)):
        size *= 2
    tree = [0] * (2 * size)  # tree[size + r]: free space of row r (0 for rows not opened yet)
    rows: list[list[int]] = []
    for i in order:
        n = lengths[i]
        if n > max_len:
            raise ValueError(f"document {i} has {n} tokens > max_len {max_len}")
        if tree[1] >= n:  # the leftmost row with room: descend towards it
            node = 1
            while node < size:
                node = 2 * node if tree[2 * node] >= n else 2 * node + 1
            r = node - size
            rows[r].append(i)
        else:
            r, node = len(rows), size + len(rows)
            rows.append([i])
            tree[node] = max_len
        tree[node] -= n
        node //= 2
        while node:  # refresh the maxima above it, stopping where one is unchanged
            left, right = tree[2 * node], tree[2 * node + 1]
            best = left if left >= right else right
            if tree[node] == best:
                break
            tree[node] = best
            node //= 2
    return rows


def packing_efficiency(lengths: Sequence[int], rows: Sequence[Sequence[int]], max_len: int) -> float:
    """Real tokens ÷ (rows × max_len)."""
    return sum(lengths) / max(1, len(rows) * max_len)


def block_causal_mask(doc_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """doc_ids: (B, L) document index per position, ``-1`` on padding → (B, 1, L, L) additive mask.

    0 where query i may attend key j (same document, j ≤ i), the dtype's minimum elsewhere. Padding
    queries attend to themselves only, so no row is fully masked.
    """
    L = doc_ids.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=doc_ids.device).tril()
    same = (doc_ids[:, :, None] == doc_ids[:, None, :]) & (doc_ids[:, None, :] >= 0)
    allowed = (same & causal) | torch.eye(L, dtype=torch.bool, device=doc_ids.device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=doc_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def collate_packed(
    rows: Sequence[Sequence[dict]], max_len: int, pad_id: int, mask_dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Each row is a list of examples (``input_ids``, ``labels``) → one padded (B, L) batch.

    L is the longest row (≤ max_len). Returns input_ids, labels, position_ids (restarting per document),
    attention_mask (B, 1, L, L) block-diagonal causal, and ``n_docs``.
    """
    L = max(sum(len(e["input_ids"]) for e in row) for row in rows)
    assert L <= max_len, (L, max_len)
    B = len(rows)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((B, L), dtype=torch.long)
    doc = torch.full((B, L), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        start = 0
        for d, e in enumerate(row):
            n = len(e["input_ids"])
            ids[b, start : start + n] = torch.tensor(e["input_ids"])
            lab = torch.tensor(e["labels"])
            lab[0] = IGNORE_INDEX  # never predict a document's first token from the previous document
            labels[b, start : start + n] = lab
            pos[b, start : start + n] = torch.arange(n)
            doc[b, start : start + n] = d
            start += n
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": pos,
        "attention_mask": block_causal_mask(doc, mask_dtype),
        "n_docs": torch.tensor(sum(len(r) for r in rows)),
    }


def packed_rows(examples: list[dict], max_len: int, pad_id: int) -> tuple[list[list[dict]], Callable, float]:
    """Examples packed into rows (first-fit decreasing): (rows, their collate function, packing efficiency)."""
    lengths = [len(e["input_ids"]) for e in examples]
    rows = pack_greedy(lengths, max_len)
    collate: Callable[[Any], dict] = functools.partial(collate_packed, max_len=max_len, pad_id=pad_id)
    return [[examples[i] for i in r] for r in rows], collate, packing_efficiency(lengths, rows, max_len)
