"""The Lightning ``Trainer`` of one stage: ``trainer.*`` settings, with each stage's own step counts where unset."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig, OmegaConf

from pedgpt.training.strategy import build_strategy

#: trainer keys that, left null, take the stage's own value (``<stage>.max_steps`` ...)
PER_STAGE_KEYS = ("max_steps", "log_every_n_steps", "val_check_interval")
#: trainer keys the stage module applies itself (manual optimisation with the non-finite guard)
MODULE_KEYS = ("fsdp", "gradient_clip_val", "accumulate_grad_batches")


def build_trainer(cfg: DictConfig, stage_key: str, stage_dir: str, loggers: list, callbacks: list) -> L.Trainer:
    tr = OmegaConf.to_container(cfg.trainer, resolve=True)
    st = cfg[stage_key]
    for k in PER_STAGE_KEYS:
        if tr.get(k) is None:
            tr[k] = st[k]
    for k in MODULE_KEYS:
        tr.pop(k, None)
    strategy = build_strategy(tr.pop("strategy"), tr)
    tr = {k: v for k, v in tr.items() if v is not None}
    return L.Trainer(
        **tr,
        strategy=strategy,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=stage_dir,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
