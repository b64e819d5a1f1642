"""Attention for packed batches without an L × L mask: the document layout picks a kernel that skips every
block between documents.

A packed batch carries a :class:`~pedgpt.data.packing.DocumentMask` (document ids and lengths). For a model
whose ``model.attention`` is ``auto`` or ``flex`` (:data:`PACKED_MODES`), :func:`model_attention_mask` turns it
into a :class:`PackedAttention` once per forward: the row's segments (its documents, then its padding as one
more causal segment), their cumulative lengths, and a document ``BlockMask`` (causal ∧ same segment) built from
block-level segment ranges — O((L/128)²) integers per row, never an L × L tensor. Each attention layer then
runs one of three exact paths (:func:`choose_path`):

* ``flex``: FlexAttention (``torch.compile`` d ``flex_attention``) with the document ``BlockMask``; ALiBi is a
  ``score_mod`` (bias ``slope_h · (kv_idx − q_idx)``). torch has no FlexAttention backward on CPU, so there it
  serves no-grad forwards only (and compiles for ~15 s per new shape).
* ``flash_varlen``: FlashAttention-2 ``flash_attn_varlen_func`` over the flattened rows with ``cu_seqlens``
  (``alibi_slopes`` for ALiBi) — CUDA, fp16/bf16, when ``flash_attn`` is installed.
* ``sdpa_varlen``: ``scaled_dot_product_attention(is_causal=True)`` over the segments, gathered into a few
  buckets of similar length (right-padded within a bucket, which causal attention never reads) — any device,
  with backward; the CPU path. ALiBi adds one (1, H, w, w) bias per bucket (w: its longest segment).

``auto`` takes ``flash_varlen``, else ``flex`` on CUDA, else ``sdpa_varlen``; ``flex`` insists on FlexAttention.
``sdpa`` and ``eager`` keep the dense (B, 1, L, L) mask (``DocumentMask.dense``): the fallback, and what any
model that does not run its attention through this module gets.

Llama / Qwen2 (transformers): ``auto`` and ``flex`` are registered as transformers attention implementations
(:func:`hf_attention_forward`): a :class:`PackedAttention` is a ``BlockMask``, which transformers' mask
preparation passes through to every layer untouched; any other mask (padding, causal, generation with a cache)
goes to transformers' own SDPA function, unchanged. Baichuan2 (pedgpt's own modeling) calls
:func:`packed_attention_forward` itself.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask, flex_attention
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface

from pedgpt.data.packing import DocumentMask

log = logging.getLogger(__name__)

PACKED_MODES = ("auto", "flex")  # model.attention values whose packed batches never attend across documents
DENSE_MODES = ("sdpa", "eager")  # model.attention values that get the dense (B, 1, L, L) mask
BLOCK_SIZE = 128  # FlexAttention's block; the BlockMask's resolution
PATHS = ("flex", "flash_varlen", "sdpa_varlen")


class PackedAttention(BlockMask):
    """A packed batch as one forward's ``attention_mask``: a document ``BlockMask`` plus the segments.

    Extra fields: ``mode`` (``auto`` / ``flex``), ``segments`` (per row: its document lengths, then its
    padding), ``seg_ids`` (B, L) int32 segment index (non-decreasing along a row), ``cu_seqlens`` (int32, the
    cumulative segment lengths over the flattened B·L positions) and ``max_seqlen``. Build it with
    :func:`packed_attention`.
    """

    mode: str
    segments: list[list[int]]
    seg_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    max_seqlen: int

    @property
    def flat_segments(self) -> list[int]:
        """Segment lengths over the flattened rows (row 0's segments, then row 1's, …)."""
        return [n for row in self.segments for n in row]

    def buckets(self) -> tuple[list[Bucket], torch.Tensor]:
        """The ``sdpa_varlen`` path's gather plan (:func:`_buckets`), built on first use and shared by every layer."""
        plan = getattr(self, "_buckets", None)
        if plan is None:
            plan = _buckets(self.flat_segments, self.seg_ids.device)
            self._buckets = plan
        return plan

    def dense_allowed(self) -> torch.Tensor:
        """(B, 1, L, L) bool, True where a query may attend a key — only for fallbacks (it is L × L)."""
        seg, L = self.seg_ids, self.seg_ids.shape[1]
        causal = torch.ones(L, L, dtype=torch.bool, device=seg.device).tril()
        return ((seg[:, :, None] == seg[:, None, :]) & causal)[:, None]


def _ordered(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, nq, nkv) bool → BlockMask's (B, 1, nq) block counts and (B, 1, nq, nkv) indices, listed ones first."""
    counts = blocks.sum(-1, dtype=torch.int32)
    order = torch.argsort(blocks.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)
    return counts[:, None], order[:, None]


def document_blocks(seg_ids: torch.Tensor, block: int = BLOCK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(partial, full) (B, nb, nb) bool block maps of the mask ``causal ∧ same segment``.

    ``seg_ids`` must be non-decreasing along each row (contiguous segments), so a block spans the segments
    ``first..last`` and kv block j ≤ q block i shares a segment with it iff ``last_j ≥ first_i``. A block is full
    (no mask needed) when it lies strictly below the diagonal, both blocks are complete and hold one and the same
    segment; every other touched block is partial (the mask is evaluated inside it).
    """
    B, L = seg_ids.shape
    nb = -(-L // block)
    starts = torch.arange(nb, device=seg_ids.device) * block
    first = seg_ids[:, starts]
    last = seg_ids[:, (starts + block).clamp(max=L) - 1]
    i, j = torch.arange(nb, device=seg_ids.device)[:, None], torch.arange(nb, device=seg_ids.device)[None, :]
    touched = (j <= i) & (last[:, None, :] >= first[:, :, None])
    complete = starts + block <= L
    one = (first == last) & complete
    full = (j < i) & one[:, :, None] & one[:, None, :] & (first[:, :, None] == first[:, None, :])
    return touched & ~full, full


def packed_attention(
    mask: DocumentMask, mode: str = "auto", device: torch.device | str | None = None
) -> PackedAttention:
    """The :class:`PackedAttention` of a packed batch (on ``device``, default the mask's)."""
    if mode not in PACKED_MODES:
        raise ValueError(f"packed attention mode must be one of {PACKED_MODES}, got {mode!r}")
    device = torch.device(device) if device is not None else mask.device
    segments = mask.segments()
    flat = [n for row in segments for n in row]
    seg_ids = torch.cat(
        [torch.repeat_interleave(torch.arange(len(row), dtype=torch.int32), torch.tensor(row)) for row in segments]
    ).view(len(segments), mask.length)
    seg_ids = seg_ids.to(device)
    partial, full = document_blocks(seg_ids)

    def same_segment(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return (kv <= q) & (seg_ids[b, q] == seg_ids[b, kv])

    out = PackedAttention.from_kv_blocks(
        *_ordered(partial),
        *_ordered(full),
        BLOCK_SIZE=BLOCK_SIZE,
        mask_mod=same_segment,
        seq_lengths=(mask.length,) * 2,
    )
    out.mode, out.segments, out.seg_ids, out.max_seqlen = mode, segments, seg_ids, max(flat)
    out.cu_seqlens = torch.tensor([0, *flat], dtype=torch.int32).cumsum(0, dtype=torch.int32).to(device)
    return out


def attention_mode(model: nn.Module) -> str | None:
    """``auto`` / ``flex`` when ``model`` runs packed batches through this module, else None (dense masks)."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    return impl if impl in PACKED_MODES else None


def model_attention_mask(model: nn.Module, attention_mask: Any, device: torch.device | str | None = None) -> Any:
    """What ``model`` gets as ``attention_mask``: a :class:`DocumentMask` becomes a :class:`PackedAttention`
    (``auto`` / ``flex`` models) or its dense (B, 1, L, L) mask (every other model); anything else is unchanged."""
    if not isinstance(attention_mask, DocumentMask):
        return attention_mask
    mode = attention_mode(model)
    if mode is None:
        return attention_mask.dense().to(device or attention_mask.device)
    return packed_attention(attention_mask, mode, device)


def flash_varlen_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # pragma: no cover - very old torch
        return False
    return bool(has_triton())


def choose_path(mode: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0) -> str:
    """The kernel one attention call uses (see the module docstring); ``flex`` raises where it cannot run."""
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    device = q.device.type
    if mode == "flex":
        if dropout:
            raise ValueError("FlexAttention has no attention dropout: use model.attention=auto")
        if device in ("cpu", "mps") and needs_grad:
            raise NotImplementedError(
                f"FlexAttention has no backward on {device} in torch {torch.__version__}: use model.attention=auto "
                "(per-document SDPA there) or sdpa (dense mask)"
            )
        return "flex"
    if mode != "auto":
        raise ValueError(f"unknown packed attention mode {mode!r}")
    if device == "cuda":
        if q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] <= 256 and flash_varlen_available():
            return "flash_varlen"
        if not dropout and _has_triton():
            return "flex"
    return "sdpa_varlen"


@functools.cache
def _compiled_flex() -> Callable[..., Any]:
    return torch.compile(flex_attention)


def flex_kernel() -> Callable[..., Any]:
    """The FlexAttention callable: compiled (the fused, block-sparse kernel); eager flex is a dense reference."""
    return _compiled_flex()


def _alibi_score_mod(slopes: torch.Tensor) -> Callable[..., torch.Tensor]:
    def alibi(score: torch.Tensor, b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return score + slopes[h] * (kv - q)

    return alibi


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: BlockMask, scale: float | None, slopes: Any) -> Any:
    score_mod = _alibi_score_mod(slopes) if slopes is not None else None
    out = flex_kernel()(q, k, v, score_mod=score_mod, block_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1])
    return out.transpose(1, 2)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(B, H, L, D) → (B·L, H, D)."""
    B, H, L, D = t.shape
    return t.transpose(1, 2).reshape(B * L, H, D)


def _flash_varlen(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: PackedAttention, scale: Any, dropout: float, slopes: Any
) -> Any:
    from flash_attn import flash_attn_varlen_func  # CUDA only; guarded by choose_path

    B, H, L, D = q.shape
    n = mask.max_seqlen
    extra = {"alibi_slopes": slopes.float()} if slopes is not None else {}
    out = flash_attn_varlen_func(
        _flat(q), _flat(k), _flat(v), mask.cu_seqlens, mask.cu_seqlens, n, n,
        dropout_p=dropout, softmax_scale=scale, causal=True, **extra,
    )  # fmt: skip
    return out.view(B, L, H, D)


def alibi_bias(slopes: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """(1, H, n, n) additive mask of one document: ``slope_h · (key − query)`` on and below the diagonal,
    the dtype's minimum above it."""
    idx = torch.arange(n, device=slopes.device)
    bias = slopes.float()[:, None, None] * (idx[None, :] - idx[:, None]).float()
    bias = bias.masked_fill(idx[None, :] > idx[:, None], torch.finfo(torch.float32).min)
    return bias.clamp(min=torch.finfo(dtype).min).to(dtype)[None]


@dataclass(frozen=True)
class Bucket:
    """Segments of similar length batched for one SDPA call: ``count`` segments, each right-padded to ``width``.

    ``src`` (count·width,) gathers each segment's positions from the flattened (B·L) rows (padding slots repeat
    the segment's last position: causal queries of the segment never reach them); ``keep`` (its tokens,) picks
    the real slots of the (count·width) output."""

    count: int
    width: int
    src: torch.Tensor
    keep: torch.Tensor


def _buckets(segments: list[int], device: torch.device) -> tuple[list[Bucket], torch.Tensor]:
    """The buckets of ``segments`` (lengths over the flattened rows) and the permutation that puts the buckets'
    concatenated real outputs back in row order.

    A segment of length n goes to the bucket of ``ceil(log2 n)``, padded to that bucket's longest segment, so a
    segment pays at most 4× its own causal attention and a row of many documents costs a handful of SDPA calls
    per layer (not one per document)."""
    starts = [0]
    for n in segments:
        starts.append(starts[-1] + n)
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(segments):
        groups.setdefault((n - 1).bit_length(), []).append(i)
    buckets: list[Bucket] = []
    order: list[int] = []
    for key in sorted(groups):
        members = groups[key]
        width = max(segments[i] for i in members)
        src: list[int] = []
        keep: list[int] = []
        for slot, i in enumerate(members):
            n, s = segments[i], starts[i]
            src += [s + min(t, n - 1) for t in range(width)]
            keep += range(slot * width, slot * width + n)
            order += range(s, s + n)
        buckets.append(
            Bucket(
                len(members),
                width,
                torch.tensor(src, dtype=torch.long, device=device),
                torch.tensor(keep, dtype=torch.long, device=device),
            )
        )
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return buckets, inverse.to(device)


def _sdpa_varlen(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: PackedAttention, scale: Any, dropout: float, slopes: Any
) -> torch.Tensor:
    B, H, L, D = q.shape
    gqa = k.shape[1] != H
    buckets, inverse = mask.buckets()
    fq, fk, fv = _flat(q), _flat(k), _flat(v)
    outs = []
    for bucket in buckets:
        n, w = bucket.count, bucket.width
        qs, ks, vs = (t.index_select(0, bucket.src).view(n, w, -1, D).transpose(1, 2) for t in (fq, fk, fv))
        if slopes is None:
            o = F.scaled_dot_product_attention(
                qs, ks, vs, dropout_p=dropout, is_causal=True, scale=scale, enable_gqa=gqa
            )
        else:  # the bias depends on the distance only: one (1, H, w, w) bias serves every segment of the bucket
            o = F.scaled_dot_product_attention(
                qs, ks, vs, attn_mask=alibi_bias(slopes, w, q.dtype), dropout_p=dropout, scale=scale, enable_gqa=gqa
            )
        outs.append(o.transpose(1, 2).reshape(n * w, H, D).index_select(0, bucket.keep))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    return out.index_select(0, inverse).view(B, L, H, D)


def packed_attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: PackedAttention,
    scale: float | None = None,
    dropout: float = 0.0,
    alibi_slopes: torch.Tensor | None = None,
    path: str | None = None,
) -> torch.Tensor:
    """Causal attention within each segment of a packed batch. q (B, H, L, D), k / v (B, Hkv, L, D) with
    ``H % Hkv == 0``; ``alibi_slopes`` (H,) adds ``slope_h · (key − query)``. Returns (B, L, H, D).
    ``path`` overrides :func:`choose_path` (tests, benchmarks)."""
    path = path or choose_path(mask.mode, q, k, v, dropout)
    if path == "flex":
        return _flex(q, k, v, mask, scale, alibi_slopes)
    if path == "flash_varlen":
        return _flash_varlen(q, k, v, mask, scale, dropout, alibi_slopes)
    if path == "sdpa_varlen":
        return _sdpa_varlen(q, k, v, mask, scale, dropout, alibi_slopes)
    raise ValueError(f"unknown attention path {path!r}; one of {PATHS}")


_UNSUPPORTED = ("sliding_window", "softcap", "s_aux")


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


def hf_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function of ``auto`` / ``flex``: packed batches through
    :func:`packed_attention_forward`, everything else through transformers' SDPA function."""
    if not isinstance(attention_mask, BlockMask):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if not isinstance(attention_mask, PackedAttention):  # a plain BlockMask someone built: FlexAttention
        return _flex(query, key, value, attention_mask, scaling, None).contiguous(), None
    unsupported = [name for name in _UNSUPPORTED if kwargs.get(name) is not None]
    if unsupported or kwargs.get("output_attentions"):
        _warn_once(f"packed attention: {unsupported or 'output_attentions'} not supported; dense-mask SDPA instead")
        dense = attention_mask.dense_allowed()
        return sdpa_attention_forward(module, query, key, value, dense, dropout=dropout, scaling=scaling, **kwargs)
    return packed_attention_forward(query, key, value, attention_mask, scaling, dropout), None


def _register() -> None:
    sdpa_mask: Any = AttentionMaskInterface._global_mapping["sdpa"]  # this version's SDPA masks
    for name in PACKED_MODES:
        AttentionInterface.register(name, hf_attention_forward)
        AttentionMaskInterface.register(name, sdpa_mask)


_register()
