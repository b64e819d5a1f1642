"""Who am I and how many are we: ranks from the launcher's environment, and the few collectives the
losses and logging need (each a no-op in one process)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def global_rank() -> int:
    """This process's global rank from the launcher's environment (torchrun, SLURM or Lightning)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return int(os.environ.get("NODE_RANK", "0")) * int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1) + int(
        os.environ.get("LOCAL_RANK", "0")
    )


def is_rank_zero() -> bool:
    return global_rank() == 0


def is_grouped() -> bool:
    """Whether a ``torch.distributed`` process group is running."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_grouped() else 1


def barrier() -> None:
    if is_grouped():
        dist.barrier()


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The sum of a tensor over data-parallel ranks (one all-reduce of a detached copy)."""
    x = x.detach().clone()
    if world_size() > 1:
        dist.all_reduce(x)
    return x


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over data-parallel ranks (one all-reduce; a no-op in one process)."""
    ws = world_size()
    return x if ws == 1 else sum_over_ranks(x) / ws


def global_token_stats(n_local: torch.Tensor, logp_local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(normaliser, global mean NLL) from one all-reduce of [label tokens, summed NLL] over data-parallel ranks.

    normaliser = global token count ÷ world size: with it, each rank's ``-Σ logp / normaliser``, averaged by
    DDP/FSDP, gives exactly the single-process gradient at the same global batch.
    """
    stats = torch.stack([n_local.detach().sum().to(torch.float32), -logp_local.detach().sum().to(torch.float32)])
    ws = world_size()
    if ws > 1:
        dist.all_reduce(stats)
    count = stats[0].clamp_min(1.0)
    return count / ws, stats[1] / count


def local_device(accelerator: str) -> torch.device:
    """This rank's device for one-off inference passes (e.g. the DFPO reference): its GPU when training uses GPUs."""
    if accelerator in ("cuda", "gpu", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")
