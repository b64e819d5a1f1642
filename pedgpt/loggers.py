"""Experiment loggers: CSV (``<run_dir>/<stage>/metrics.csv``) or W&B (one run per stage)."""
from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig, OmegaConf


def wandb_mode(cfg_mode: str | None) -> str:
    """``offline`` unless the user configured W&B (an API key, a netrc entry, or WANDB_MODE)."""
    if cfg_mode:
        return cfg_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or os.path.exists(os.path.expanduser("~/.netrc")) and \
            "api.wandb.ai" in open(os.path.expanduser("~/.netrc")).read():
        return "online"
    return "offline"


def build_loggers(cfg: DictConfig, stage: str, run_dir: str, group: str) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    kinds = cfg.logger.kinds
    out = []
    if "csv" in kinds:
        out.append(CSVLogger(save_dir=run_dir, name=stage, version="",
                             flush_logs_every_n_steps=int(cfg.logger.csv_flush_every_n_steps)))
    if "wandb" in kinds:
        out.append(WandbLogger(
            project=cfg.logger.project, entity=cfg.logger.entity, group=group, job_type=stage,
            name=f"{group}-{stage}", save_dir=os.path.join(run_dir, stage), mode=wandb_mode(cfg.logger.mode),
            config=OmegaConf.to_container(cfg, resolve=True), tags=list(cfg.logger.tags or []) + [stage]))
    return out


def close_loggers(loggers: list[Any]) -> None:
    """Finish W&B runs so the next stage (or multirun job) starts its own run."""
    for lg in loggers:
        lg.finalize("success")
        if lg.__class__.__name__ == "WandbLogger":
            import wandb
            if wandb.run is not None:
                wandb.finish()
