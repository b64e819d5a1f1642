"""Per-sequence log-probabilities of label tokens, in fp32, without full-vocabulary fp32 logits.

:class:`SequenceLogProbs` wraps an HF causal LM. Its ``forward`` runs the decoder once, keeps only the
positions whose (shifted) label is not ``-100`` and applies the LM head to those rows in chunks, each
chunk cast to fp32 for the log-softmax. Prompt and padding positions therefore cost no LM-head FLOPs at
all, and the largest fp32 tensor is ``chunk × vocab``.

Why inside a wrapper's forward: under FSDP2 the root unit (embedding, final norm, LM head) is gathered by
the forward pre-hook of the module that is sharded as the root. Sharding this wrapper as the root means
the LM head is unsharded while the chunks run, and resharded after — the same code works sharded or not.
With ``chunk_size > 0`` each chunk is activation-checkpointed, so the backward keeps only the hidden
rows, not the chunk's logits (memory for large vocabularies; costs one extra LM-head matmul).

A packed batch's ``attention_mask`` is a :class:`~pedgpt.data.packing.DocumentMask`; the forward hands the
decoder what its attention path needs (:func:`pedgpt.models.attention.model_attention_mask`): per-document
attention without an L × L mask for ``model.attention`` ``auto`` / ``flex``, the dense mask otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.packing import DocumentMask
from pedgpt.models.attention import model_attention_mask


def _chunk_logps(h: torch.Tensor, head: Any, y: torch.Tensor) -> torch.Tensor:
    """h: (N, d) hidden rows, y: (N,) targets → (N,) fp32 log-probs."""
    return -F.cross_entropy(head(h).float(), y, reduction="none")


def selected_token_logps(
    hidden: torch.Tensor, head: Any, labels: torch.Tensor, chunk_size: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of next-token labels per sequence.

    hidden: (B, L, d) decoder outputs; labels: (B, L) with ``-100`` where no loss is taken.
    Returns ``(logp_sum, n_tokens)``, both (B,), ``logp_sum`` in fp32.
    """
    h, y = hidden[:, :-1], labels[:, 1:]
    keep = y != IGNORE_INDEX
    rows = keep.nonzero(as_tuple=True)
    h_sel, y_sel = h[rows], y[rows]
    if chunk_size and h_sel.shape[0] > chunk_size:
        parts = [
            checkpoint(_chunk_logps, h_sel[i : i + chunk_size], head, y_sel[i : i + chunk_size], use_reentrant=False)
            for i in range(0, h_sel.shape[0], chunk_size)
        ]
        lp = torch.cat(parts)
    else:
        lp = _chunk_logps(h_sel, head, y_sel)
    logp_sum = torch.zeros(labels.shape[0], dtype=torch.float32, device=labels.device)
    logp_sum = logp_sum.index_add(0, rows[0], lp)
    return logp_sum, keep.sum(-1)


def decoder_of(lm: nn.Module) -> Any:
    """The decoder stack of a causal LM (``get_decoder()``, else ``.model``)."""
    model: Any = lm
    dec = model.get_decoder() if hasattr(model, "get_decoder") else None
    return dec if dec is not None else model.model


class SequenceLogProbs(nn.Module):
    """``forward(input_ids, labels, attention_mask=None, position_ids=None) -> (logp_sum, n_tokens)``.

    ``attention_mask``: None, a (B, L) padding mask, a 4-D mask, or a packed batch's :class:`DocumentMask`."""

    def __init__(self, lm: nn.Module, chunk_size: int = 0):
        super().__init__()
        self.lm = lm
        self.chunk_size = chunk_size

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | DocumentMask | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        extra = {"position_ids": position_ids} if position_ids is not None else {}  # remote-code models may lack it
        mask = model_attention_mask(self.lm, attention_mask, input_ids.device)
        out = decoder_of(self.lm)(input_ids=input_ids, attention_mask=mask, use_cache=False, **extra)
        lm: Any = self.lm
        head = lm.get_output_embeddings()
        return selected_token_logps(out.last_hidden_state, head, labels, self.chunk_size)
