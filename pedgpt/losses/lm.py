"""Language-model losses over per-sequence summed log-probs (see ``pedgpt.models.logps``)."""

from __future__ import annotations

import torch


def token_mean_nll(
    logp_sum: torch.Tensor, n_tokens: torch.Tensor, normaliser: torch.Tensor | float | None = None
) -> torch.Tensor:
    """Mean negative log-likelihood per label token.

    logp_sum: (B,) summed log-probs; n_tokens: (B,) label-token counts. ``normaliser`` replaces the local
    token count — pass the **global** count (all-reduced over data-parallel ranks, divided by the world
    size) so that the gradient averaged by DDP/FSDP equals the single-process gradient at the same
    global batch.
    """
    denom = n_tokens.sum().clamp_min(1) if normaliser is None else normaliser
    return -logp_sum.sum() / denom


def sequence_mean_nll(logp_sum: torch.Tensor, n_tokens: torch.Tensor) -> torch.Tensor:
    """(B,) per-sequence mean-token NLL (0 for sequences without label tokens)."""
    return -logp_sum / n_tokens.clamp_min(1).to(logp_sum.dtype)


def task_nll_sums(
    logp_sum: torch.Tensor, n_tokens: torch.Tensor, task_ids: torch.Tensor, num_tasks: int
) -> torch.Tensor:
    """Summed NLL and label-token count per task: logp_sum, n_tokens, task_ids (B,) → (2, num_tasks) fp32."""
    out = torch.zeros(2, num_tasks, dtype=torch.float32, device=logp_sum.device)
    out[0].index_add_(0, task_ids, -logp_sum.detach().float())
    out[1].index_add_(0, task_ids, n_tokens.float())
    return out
