"""Preference losses: DPO and DFPO (DPO + μ × mean-token NLL of the chosen answer).

All inputs are per-sequence tensors of shape ``(B,)``; the loss is computed in the inputs' dtype (pass
fp32 log-probs). Metric names follow TRL: ``rewards/chosen``, ``rewards/rejected``,
``rewards/accuracies``, ``rewards/margins``, ``logps/chosen``, ``logps/rejected``.

DFPO vs TRL's ``rpo_alpha``: DFPO's following term is the mean over sequences of each chosen answer's
*own* mean-token NLL; TRL averages the NLL over all chosen tokens of the batch. The two agree only when
every chosen answer in the batch has the same length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _preference_terms(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    logits = chosen_rewards - rejected_rewards  # β·((πc − rc) − (πr − rr))
    # conservative DPO (label smoothing ε): the preference label is flipped with probability ε
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    metrics = {
        "rewards/chosen": chosen_rewards.detach().mean(),
        "rewards/rejected": rejected_rewards.detach().mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).to(logits.dtype).detach().mean(),
        "rewards/margins": (chosen_rewards - rejected_rewards).detach().mean(),
        "logps/chosen": policy_chosen_logps.detach().mean(),
        "logps/rejected": policy_rejected_logps.detach().mean(),
    }
    return losses, metrics


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean(-logσ(β·((πc − rc) − (πr − rr))))``; inputs (B,) summed log-probs. Returns (loss, metrics)."""
    losses, metrics = _preference_terms(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        beta=beta,
        label_smoothing=label_smoothing,
    )
    loss = losses.mean()
    metrics["loss/preference"] = loss.detach()
    return loss, metrics


def dfpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    beta: float,
    mu: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean(-logσ(β·((πc − rc) − (πr − rr))) + μ·chosen_nll)``.

    chosen_nll: (B,) per-sequence mean-token NLL of the chosen answer under the policy.
    When policy == reference the loss is ``ln 2 + μ·mean(chosen_nll)``.
    """
    losses, metrics = _preference_terms(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        beta=beta,
        label_smoothing=label_smoothing,
    )
    following = chosen_nll.mean()
    metrics["loss/preference"] = losses.detach().mean()
    metrics["loss/following"] = following.detach()
    return (losses + mu * chosen_nll).mean(), metrics
