"""Quieter third-party logging for the command-line tools, and the W&B mode a run logs in."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "transformers.modeling_utils",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # the data position is restored by ExamplesDataModule.state_dict (exact), not by a stateful dataloader
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


#: the modes ``logger.mode`` may name (null: :func:`wandb_mode` decides)
WANDB_MODES = ("online", "offline", "disabled")


def wandb_mode(cfg_mode: str | None) -> str:
    """``offline`` unless the user configured W&B (an API key, a netrc entry, or WANDB_MODE)."""
    if cfg_mode:
        return cfg_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if (
        os.environ.get("WANDB_API_KEY")
        or os.path.exists(os.path.expanduser("~/.netrc"))
        and "api.wandb.ai" in open(os.path.expanduser("~/.netrc")).read()
    ):
        return "online"
    return "offline"
