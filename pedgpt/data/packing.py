"""Sequence packing with no attention across document boundaries.

Restarted ``position_ids`` alone do not stop cross-document attention, so a packed batch also says where its
documents are: ``attention_mask`` is a :class:`DocumentMask` — the (B, L) document index of every position and
the document lengths of every row, a few kilobytes — not the (B, 1, L, L) mask it stands for (64 MiB per row in
fp32 at L = 4096). The model side (:mod:`pedgpt.models.attention`) turns it into the attention its path needs:
per-document kernels that never compute attention between documents (FlexAttention with a document
``BlockMask``, FlashAttention-2 varlen, SDPA per document), or, for the ``sdpa``/``eager`` paths, the dense
block-diagonal causal mask of :func:`block_causal_mask` (``DocumentMask.dense``), which transformers (4.56+ and
5.x) passes through unchanged. Either way packed logits equal the unpacked logits of every document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, eq=False)
class DocumentMask:
    """The document layout of a packed batch, standing in for its (B, 1, L, L) block-diagonal causal mask.

    ``doc_ids`` (B, L) int32: the document index of each position within its row, ``-1`` on padding;
    ``lengths``: each row's document lengths, in order (host integers, so no kernel needs a device sync);
    ``dtype``: the dtype of the dense mask when one is materialised. Rows are documents back to back from
    position 0, then padding. It reads like the mask it replaces where code only asks what kind of mask a
    batch has (``dim()`` is 4) or looks at part of it (indexing materialises only the rows asked for); ``to``
    moves it with the batch (Lightning calls it).
    """

    doc_ids: torch.Tensor
    lengths: tuple[tuple[int, ...], ...]
    dtype: torch.dtype = torch.float32

    @classmethod
    def from_lengths(
        cls, lengths: Sequence[Sequence[int]], length: int, dtype: torch.dtype = torch.float32
    ) -> DocumentMask:
        """Rows of documents with these lengths, padded to ``length`` positions."""
        rows = tuple(tuple(int(n) for n in row) for row in lengths)
        if any(n <= 0 for row in rows for n in row) or any(sum(row) > length for row in rows):
            raise ValueError(f"document lengths must be positive and fit in {length} positions: {rows}")
        doc = torch.full((len(rows), length), -1, dtype=torch.int32)
        for b, row in enumerate(rows):
            if row:
                doc[b, : sum(row)] = torch.repeat_interleave(
                    torch.arange(len(row), dtype=torch.int32), torch.tensor(row)
                )
        return cls(doc, rows, dtype)

    @property
    def length(self) -> int:
        """L, the padded row length."""
        return int(self.doc_ids.shape[1])

    @property
    def device(self) -> torch.device:
        return self.doc_ids.device

    def segments(self) -> list[list[int]]:
        """Each row cut into contiguous causal segments covering all L positions: its documents, then the
        padding as one more segment (its outputs are never used; it only keeps every query row non-empty)."""
        pad = [self.length - sum(row) for row in self.lengths]
        return [list(row) + ([p] if p else []) for row, p in zip(self.lengths, pad)]

    def token_mask(self) -> torch.Tensor:
        """(B, L) bool, True on document tokens, False on padding."""
        return self.doc_ids >= 0

    def dense(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The (B, 1, L, L) additive mask of :func:`block_causal_mask` — the dense-mask path's input."""
        return block_causal_mask(self.doc_ids, dtype or self.dtype)

    def dim(self) -> int:
        """4, the rank of the mask this stands for (code tells padded from packed batches by mask rank)."""
        return 4

    def __getitem__(self, index: Any) -> torch.Tensor:
        """Index the dense mask; a leading integer materialises that row alone."""
        if isinstance(index, int):
            index = (index,)
        if isinstance(index, tuple) and index and isinstance(index[0], int):
            row = self.doc_ids[index[0]][None]  # IndexError out of range, like a tensor
            return block_causal_mask(row, self.dtype)[0][index[1:]]
        return self.dense()[index]

    __iter__ = None  # indexable, but not a sequence: nothing should iterate over the rows of a mask

    def to(self, device: torch.device | str, non_blocking: bool = False) -> DocumentMask:
        return DocumentMask(self.doc_ids.to(device, non_blocking=non_blocking), self.lengths, self.dtype)


def collate_packed(
    rows: Sequence[Sequence[dict]], max_len: int, pad_id: int, mask_dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """Each row is a list of examples (``input_ids``, ``labels``) → one padded (B, L) batch.

    L is the longest row (≤ max_len). Returns input_ids, labels, position_ids (restarting per document),
    ``attention_mask`` (a :class:`DocumentMask`: document ids and lengths, no L × L tensor; its dense form is
    block-diagonal causal in ``mask_dtype``), ``token_mask`` (B, L) bool (True on document tokens) and ``n_docs``.
    """
    L = max(sum(len(e["input_ids"]) for e in row) for row in rows)
    assert L <= max_len, (L, max_len)
    B = len(rows)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((B, L), dtype=torch.long)
    for b, row in enumerate(rows):
        start = 0
        for e in row:
            n = len(e["input_ids"])
            ids[b, start : start + n] = torch.tensor(e["input_ids"])
            lab = torch.tensor(e["labels"])
            lab[0] = IGNORE_INDEX  # never predict a document's first token from the previous document
            labels[b, start : start + n] = lab
            pos[b, start : start + n] = torch.arange(n)
            start += n
    mask = DocumentMask.from_lengths([[len(e["input_ids"]) for e in row] for row in rows], L, mask_dtype)
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": pos,
        "attention_mask": mask,
        "token_mask": mask.token_mask(),
        "n_docs": torch.tensor(sum(len(r) for r in rows)),
    }


def packed_rows(examples: list[dict], max_len: int, pad_id: int) -> tuple[list[list[dict]], Callable, float]:
    """Examples packed into rows (first-fit decreasing): (rows, their collate function, packing efficiency)."""
    lengths = [len(e["input_ids"]) for e in examples]
    rows = pack_greedy(lengths, max_len)
    collate: Callable[[Any], dict] = functools.partial(collate_packed, max_len=max_len, pad_id=pad_id)
    return [[examples[i] for i in r] for r in rows], collate, packing_efficiency(lengths, rows, max_len)
