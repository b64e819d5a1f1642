"""Training FLOPs per token (for tokens/s → MFU), a pure function of the architecture's sizes."""

from __future__ import annotations


def flops_per_token(non_embedding_params: int, layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 6·N (forward + backward matmuls over the non-embedding weights) plus
    12·L·h·s for the attention scores and weighted values (forward + backward). Activation-checkpoint
    recompute is not counted (MFU, not hardware FLOPs utilisation)."""
    return 6.0 * non_embedding_params + 12.0 * layers * hidden * seq_len
