"""Experiment loggers: CSV (``<run_dir>/<stage>/metrics.csv``) or W&B (one run per stage)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import wandb
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from pedgpt.common.logs import wandb_mode
from pedgpt.distributed.world import is_rank_zero
from pedgpt.training.csv_logger import ResumableCSVLogger


def wandb_run_id(stage_dir: str, resume: bool) -> str:
    """The stage's W&B run id, kept in the stage directory so a resumed stage continues the same run."""
    path = os.path.join(stage_dir, "wandb_run_id.txt")
    if resume and os.path.exists(path):
        return open(path).read().strip()
    run_id = uuid.uuid4().hex[:12]
    if is_rank_zero():  # only rank 0 logs to W&B; other ranks must not overwrite its id
        os.makedirs(stage_dir, exist_ok=True)
        with open(path, "w") as f:
            f.write(run_id)
    return run_id


def run_name(group: str, stage: str, swept: list[str]) -> str:
    """A job's W&B run name: its stage and the overrides its sweep varies (``mole num_specific=3``), else
    ``<group>-<stage>``."""
    if not swept:
        return f"{group}-{stage}"
    return " ".join([stage] + [f"{k.rsplit('.', 1)[-1]}={v}" for k, _, v in (o.partition("=") for o in swept)])


def build_loggers(
    cfg: DictConfig,
    stage: str,
    run_dir: str,
    group: str,
    resume_step: int | None = None,
    swept: list[str] | None = None,
) -> list[Any]:
    """``resume_step``: the step of the checkpoint a resumed stage restarts from (None for a fresh stage);
    ``swept``: the ``key=value`` overrides a multirun sweep varies in this job (name and tags)."""
    swept = list(swept or [])
    kinds = cfg.logger.kinds
    stage_dir = os.path.join(run_dir, stage)
    out: list[Any] = []
    if "csv" in kinds:
        out.append(ResumableCSVLogger(stage_dir, int(cfg.logger.csv_flush_every_n_steps), resume_step))
    if "wandb" in kinds:
        out.append(
            WandbLogger(
                project=cfg.logger.project,
                entity=cfg.logger.entity,
                group=group,
                job_type=stage,
                name=run_name(group, stage, swept),
                save_dir=stage_dir,
                mode=wandb_mode(cfg.logger.mode),
                id=wandb_run_id(stage_dir, resume_step is not None),
                resume="allow",
                config=OmegaConf.to_container(cfg, resolve=True),
                tags=list(cfg.logger.tags or []) + [stage] + swept,
            )
        )
    return out


def close_loggers(loggers: list[Any]) -> None:
    """Finish W&B runs so the next stage (or multirun job) starts its own run."""
    for lg in loggers:
        lg.finalize("success")
        if isinstance(lg, WandbLogger) and wandb.run is not None:
            wandb.finish()
