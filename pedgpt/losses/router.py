"""Auxiliary losses of MoE-LoRA routers — pure functions over gate probabilities.

* :func:`task_expert_mi_loss` — minus the mutual information between the task of a token and the expert
  it is routed to (used by the ``token_task_aux`` router). Maximising I(T; E) = H(E) - H(E | T) asks for
  balanced expert use overall (high H(E)) and peaked use within each task (low H(E | T)); it is defined
  for any number of tasks and experts.
* :func:`load_balancing_loss` — the Switch-Transformer balance loss for top-k routing.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def task_expert_joint(gates: torch.Tensor, task_ids: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """Joint probability table p(task, expert) from soft routing.

    gates: (N, S) gate probabilities per token (rows sum to 1); task_ids: (N,) long in [0, num_tasks).
    Returns (num_tasks, S): sum over tokens of task t of their gates, divided by N — i.e. p(t) · p(e | t).
    """
    joint = gates.new_zeros(num_tasks, gates.shape[-1]).index_add(0, task_ids, gates)
    return joint / max(gates.shape[0], 1)


def mutual_information(joint: torch.Tensor) -> torch.Tensor:
    """I(T; E) in nats of a joint table (T, S) whose entries sum to 1. Scalar, differentiable."""
    p_t = joint.sum(-1, keepdim=True)  # (T, 1)
    p_e = joint.sum(0, keepdim=True)  # (1, S)
    ratio = joint.clamp_min(_EPS) / (p_t * p_e).clamp_min(_EPS)
    return (joint * ratio.log()).sum()


def task_expert_mi_loss(gates: torch.Tensor, task_ids: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """-I(task; expert) of a batch. gates: (N, S) fp32 probabilities; task_ids: (N,) long. Scalar."""
    return -mutual_information(task_expert_joint(gates, task_ids, num_tasks))


def load_balancing_loss(probs: torch.Tensor, top_idx: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer balance loss ``S · Σ_j f_j · P_j`` (1 when perfectly balanced).

    probs: (N, S) router probabilities before top-k; top_idx: (N, k) chosen experts. f_j is the fraction of
    the N·k assignments that went to expert j, P_j the mean probability of expert j. Scalar.
    """
    num_experts = probs.shape[-1]
    counts = torch.zeros(num_experts, device=probs.device, dtype=probs.dtype)
    counts = counts.index_add(0, top_idx.reshape(-1), torch.ones_like(top_idx.reshape(-1), dtype=probs.dtype))
    frac = counts / max(top_idx.numel(), 1)
    return num_experts * (frac * probs.mean(0)).sum()
