"""Startup validation of the composed config: unknown keys, wrong types, impossible combinations.

Every problem raises :class:`ConfigError` with one line naming the config key, before any model is built.
"""
from __future__ import annotations

import json
import os

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from pedgpt.config.schema import TrainSchema

STAGES = ("cpt", "sft", "dfpo", "mole")


class ConfigError(ValueError):
    pass


def _schema_check(cfg: DictConfig) -> None:
    schema = OmegaConf.structured(TrainSchema)
    data = OmegaConf.to_container(cfg, resolve=True)
    try:
        OmegaConf.merge(schema, data)
    except ConfigKeyError as e:
        key = f"{e.full_key}" if getattr(e, "full_key", None) else str(e).splitlines()[0]
        raise ConfigError(f"unknown config key `{key}` (check the spelling in your YAML file or override)") from None
    except (ValidationError, OmegaConfBaseException) as e:
        msg = str(e).splitlines()[0]
        raise ConfigError(f"config key `{getattr(e, 'full_key', '?')}`: {msg}") from None


def _combination_check(cfg: DictConfig) -> None:
    bad = [s for s in cfg.pipeline if s not in STAGES]
    if bad:
        raise ConfigError(f"pipeline: unknown stage(s) {bad}; stages are {list(STAGES)}")
    if not cfg.pipeline:
        raise ConfigError("pipeline: empty; name at least one stage")
    for s in cfg.pipeline:
        st = cfg[s]
        for k in ("max_steps", "batch_size", "val_batch_size", "max_len", "log_every_n_steps", "val_check_interval"):
            if int(st[k]) <= 0:
                raise ConfigError(f"{s}.{k}: must be positive, got {st[k]}")
        if not st.optimizer or "_target_" not in st.optimizer:
            raise ConfigError(f"{s}.optimizer: needs a `_target_` (e.g. torch.optim.AdamW with `_partial_: true`)")
        limit = cfg.model.arch.get("max_position_embeddings") if cfg.model.arch else None
        if limit and int(st.max_len) > int(limit):
            raise ConfigError(f"{s}.max_len: {st.max_len} exceeds the model's limit model.arch.max_position_embeddings={limit}")
    if "dfpo" in cfg.pipeline:
        if cfg.dfpo.loss not in ("dfpo", "dpo"):
            raise ConfigError(f"dfpo.loss: must be dfpo or dpo, got {cfg.dfpo.loss!r}")
        if cfg.dfpo.ref not in ("cached", "online", "adapter_disabled"):
            raise ConfigError(f"dfpo.ref: must be cached, online or adapter_disabled, got {cfg.dfpo.ref!r}")
        if cfg.dfpo.ref == "adapter_disabled" and cfg.adapter.name == "none":
            raise ConfigError("dfpo.ref: adapter_disabled needs an adapter on the policy (adapter=moe_lora)")
        if not 0 <= float(cfg.dfpo.label_smoothing) < 0.5:
            raise ConfigError(f"dfpo.label_smoothing: must be in [0, 0.5), got {cfg.dfpo.label_smoothing}")
    if "mole" in cfg.pipeline:
        if cfg.adapter.name == "none":
            raise ConfigError("adapter: stage mole needs an adapter (adapter=moe_lora)")
        if int(cfg.adapter.rank) <= 0:
            raise ConfigError(f"adapter.rank: must be positive, got {cfg.adapter.rank}")
    for key, low in (("checkpoint_every_n_steps", 0), ("keep_last_checkpoints", 1), ("max_nonfinite_in_a_row", 0),
                     ("trainer.accumulate_grad_batches", 1)):
        if int(OmegaConf.select(cfg, key)) < low:
            raise ConfigError(f"{key}: must be at least {low}, got {OmegaConf.select(cfg, key)}")
    from pedgpt.data.templates import template_names
    if cfg.model.template not in template_names():
        raise ConfigError(f"model.template: unknown chat template {cfg.model.template!r}; registered: {template_names()}")
    if cfg.adapter.name != "none":
        from pedgpt.adapters.routers import get_router
        try:
            get_router(cfg.adapter.router)
        except ValueError as e:
            raise ConfigError(f"adapter.router: {e}") from None
    if cfg.trainer.strategy not in ("auto", "ddp", "fsdp"):
        raise ConfigError(f"trainer.strategy: must be auto, ddp or fsdp, got {cfg.trainer.strategy!r}")
    if not set(cfg.logger.kinds) <= {"csv", "wandb"}:
        raise ConfigError(f"logger.kinds: only csv and wandb are supported, got {list(cfg.logger.kinds)}")


STAGE_FILES = {"cpt": ("cpt", "sft"), "sft": ("sft",), "dfpo": ("dfpo",), "mole": ("sft",)}
TASK_ROUTERS = ("task", "token_task_aux")


def _has_record(path: str, want=lambda rec: True) -> bool:
    """Whether a JSONL file holds a record satisfying ``want`` (stops at the first one)."""
    with open(path, encoding="utf-8") as f:
        return any(line.strip() and want(json.loads(line)) for line in f)


def _path_check(cfg: DictConfig) -> None:
    """Files the run will need hours later: the ``init_from`` export and the PedCorpus of every stage."""
    if cfg.init_from:
        if not os.path.exists(os.path.join(cfg.init_from, "config.json")):
            raise ConfigError(f"init_from: {cfg.init_from} is not an HF export (no config.json)")
        if not any(os.path.exists(os.path.join(cfg.init_from, f)) for f in ("tokenizer.json", "tokenizer.model")):
            raise ConfigError(f"init_from: {cfg.init_from} has no tokenizer (tokenizer.json or tokenizer.model)")
    if cfg.data.root is None:
        return
    for stage in cfg.pipeline:
        for sub in STAGE_FILES[stage]:
            for split in ("train", "dev"):
                path = os.path.join(cfg.data.root, sub, f"{split}.jsonl")
                if not os.path.exists(path):
                    raise ConfigError(f"data.root: {path} is missing (stage {stage} needs it); build a PedCorpus "
                                      f"with `python -m pedgpt.data.build source_dir=... out_dir={cfg.data.root}`")
    if "dfpo" in cfg.pipeline and not _has_record(os.path.join(cfg.data.root, "dfpo", "train.jsonl")):
        raise ConfigError(f"data.root: {os.path.join(cfg.data.root, 'dfpo', 'train.jsonl')} holds no preference "
                          "pairs; stage dfpo needs them")
    if "mole" in cfg.pipeline and cfg.adapter.router in TASK_ROUTERS:
        from pedgpt.data.schema import PEDIATRIC_TASKS
        path = os.path.join(cfg.data.root, "sft", "train.jsonl")
        if not _has_record(path, lambda rec: rec.get("task") in PEDIATRIC_TASKS):
            raise ConfigError(f"adapter.router: {cfg.adapter.router} routes by task, but {path} holds no "
                              f"instruction labelled with a task of {list(PEDIATRIC_TASKS)}")


def _device_check(cfg: DictConfig) -> None:
    from pedgpt.distributed.strategy import check_devices
    try:
        check_devices(OmegaConf.to_container(cfg.trainer, resolve=True))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _required_check(cfg: DictConfig) -> None:
    """A real-model run that starts at DFPO or MoE-LoRA must start from the previous stage's export."""
    first = cfg.pipeline[0]
    if first in ("dfpo", "mole") and not cfg.model.build_from_config and not cfg.init_from:
        prev = {"dfpo": "sft", "mole": "dfpo"}[first]
        raise ConfigError(f"init_from: required when a {cfg.model.name} run starts at {first}: pass the {prev} "
                          f"export, e.g. init_from=<run_dir>/{prev}/export")


def validate(cfg: DictConfig) -> DictConfig:
    _schema_check(cfg)
    _combination_check(cfg)
    if not cfg.dry_run:
        _required_check(cfg)
        _device_check(cfg)
        _path_check(cfg)
    return cfg
