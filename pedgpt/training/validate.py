"""Startup validation of the composed training config: types, unknown and missing keys, ranges, combinations,
files. Every problem raises :class:`ConfigError` with one line naming the config key, before any model is built.

:func:`validate` returns the typed config the run uses: the run-wide keys merged onto
:class:`pedgpt.config.schema.TrainConfig`, each pipeline stage's node onto its stage's config class (filled
from the stage's stored values when a plugin stage has no YAML node).
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

from pedgpt.adapters.routers import get_router
from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import ADAPTER_RULES, check_rules
from pedgpt.config.schema import TrainConfig
from pedgpt.data.corpus.manifest import verify_corpus
from pedgpt.data.schema import TASKS
from pedgpt.data.templates import template_names
from pedgpt.models.tokenizer import tokenizer_problem
from pedgpt.stages.registry import get_stage, stage_names, stored_values
from pedgpt.training.settings_rules import RUN_RULES
from pedgpt.training.strategy import check_devices, strategy_names, world_size_of


def _typed(cfg: DictConfig) -> DictConfig:
    """The config merged onto its schemas (raises ConfigError for unknown keys and wrong types, with the full key).

    A pipeline stage without a node in the config (a plugin stage without a YAML file) gets the values stored
    with its schema in the ConfigStore.
    """
    data = OmegaConf.to_container(cfg, resolve=False)
    schema = OmegaConf.structured(TrainConfig)
    try:
        with open_dict(schema):
            for name in data.get("pipeline") or []:
                key = get_stage(name).key()
                values = stored_values(key)
                if values is not None:  # a plugin stage's own values, under what the run sets
                    stored = OmegaConf.create(OmegaConf.to_container(OmegaConf.structured(values)))
                    data[key] = OmegaConf.to_container(OmegaConf.merge(stored, data.get(key) or {}))
                elif key not in data:
                    raise ConfigError(
                        f"{key}: stage {name} has no settings (no conf/stage/{key}.yaml in the "
                        "defaults list and no values stored with its schema)"
                    )
            for key in data:
                if key in stage_names():
                    schema[key] = OmegaConf.structured(get_stage(key).config_class)
        typed = OmegaConf.merge(schema, data)
    except ConfigKeyError as e:
        key = f"{e.full_key}" if getattr(e, "full_key", None) else str(e).splitlines()[0]
        raise ConfigError(f"unknown config key `{key}` (check the spelling in your YAML file or override)") from None
    except (ValidationError, OmegaConfBaseException) as e:
        msg = str(e).splitlines()[0]
        raise ConfigError(f"config key `{getattr(e, 'full_key', '?')}`: {msg}") from None
    OmegaConf.set_struct(typed, True)
    return typed


def _missing(cfg: DictConfig, node: DictConfig, prefix: str, skip: tuple[str, ...] = ()) -> None:
    for key in node:
        full = f"{prefix}{key}"
        if full in skip:
            continue
        if OmegaConf.is_missing(node, key):
            raise ConfigError(f"{full}: required (no value set)")
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _missing(cfg, child, f"{full}.", skip)


def _stage_checks(cfg: DictConfig) -> None:
    if not cfg.pipeline:
        raise ConfigError("pipeline: empty; name at least one stage")
    for name in cfg.pipeline:
        stage = get_stage(name)(cfg)
        key, st = stage.key(), stage.st
        check_rules(st, stage.rules, f"{key}.")
        if OmegaConf.is_missing(st.optimizer, "_target_") or not st.optimizer._target_:
            raise ConfigError(f"{key}.optimizer: needs a `_target_` (e.g. torch.optim.AdamW with `_partial_: true`)")
        limit = cfg.model.arch.get("max_position_embeddings") if cfg.model.arch else None
        if limit and int(st.max_len) > int(limit):
            raise ConfigError(
                f"{key}.max_len: {st.max_len} exceeds the model's limit model.arch.max_position_embeddings={limit}"
            )
        stage.check()


def _run_checks(cfg: DictConfig) -> None:
    check_rules(cfg, RUN_RULES)
    if cfg.model.template not in template_names():
        raise ConfigError(
            f"model.template: unknown chat template {cfg.model.template!r}; registered: {template_names()}"
        )
    if cfg.adapter.name != "none":
        check_rules(cfg.adapter, ADAPTER_RULES, "adapter.")
        kwargs = {k: v for k, v in OmegaConf.to_container(cfg.adapter.router_kwargs).items() if v is not None}
        try:  # the router the adapter will build: its name, and the options it accepts with their ranges
            get_router(cfg.adapter.router)(int(cfg.adapter.num_specific), len(TASKS), **kwargs)
        except ValueError as e:
            raise ConfigError(f"adapter.router: {e}") from None
    if cfg.trainer.strategy not in strategy_names():
        *first, last = strategy_names()
        raise ConfigError(f"trainer.strategy: must be {', '.join(first)} or {last}, got {cfg.trainer.strategy!r}")
    if not set(cfg.logger.kinds) <= {"csv", "wandb"}:
        raise ConfigError(f"logger.kinds: only csv and wandb are supported, got {list(cfg.logger.kinds)}")


def _path_check(cfg: DictConfig) -> None:
    """Files the run will need hours later: the ``init_from`` export and the PedCorpus of every stage."""
    if cfg.init_from:
        if not os.path.exists(os.path.join(cfg.init_from, "config.json")):
            raise ConfigError(f"init_from: {cfg.init_from} is not an HF export (no config.json)")
        problem = tokenizer_problem(cfg.init_from)
        if problem:
            raise ConfigError(f"init_from: {problem}")
    if cfg.data.root is None:
        return
    parts = {sub for name in cfg.pipeline for sub in get_stage(name).corpus_parts}
    # a complete, unchanged build (its manifest), holding every file the stages read and training records in each
    verify_corpus(
        cfg.data.root,
        need=[f"{sub}/{split}.jsonl" for sub in sorted(parts) for split in ("train", "dev")],
        nonempty=[f"{sub}/train.jsonl" for sub in sorted(parts)],
    )
    for name in cfg.pipeline:
        stage = get_stage(name)
        for sub in stage.corpus_parts:
            for split in ("train", "dev"):
                path = os.path.join(cfg.data.root, sub, f"{split}.jsonl")
                if not os.path.exists(path):
                    raise ConfigError(
                        f"data.root: {path} is missing (stage {name} needs it); build a PedCorpus "
                        f"with `python -m pedgpt.data.build source_dir=... out_dir={cfg.data.root}`"
                    )
        stage(cfg).check_data(cfg.data.root)


def _device_check(cfg: DictConfig, multirun: bool) -> None:
    trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
    try:
        check_devices(trainer)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    processes = world_size_of(trainer)
    external = any(os.environ.get(k) for k in ("TORCHELASTIC_RUN_ID", "SLURM_PROCID", "LOCAL_RANK"))
    if multirun and processes != 1 and not external:
        raise ConfigError(
            f"trainer.devices: a Hydra multirun (-m) cannot start {processes if processes > 0 else 'several'} "
            "processes per job itself; launch the sweep with torchrun (torchrun --nproc_per_node=N -m pedgpt.train "
            "-m ...) or run it with trainer.devices=1"
        )


def _required_check(cfg: DictConfig) -> None:
    """A real-model run that starts at a later stage must start from the previous stage's export."""
    first = get_stage(cfg.pipeline[0])
    if first.starts_from and not cfg.model.build_from_config and not cfg.init_from:
        raise ConfigError(
            f"init_from: required when a {cfg.model.name} run starts at {first.name}: pass the "
            f"{first.starts_from} export, e.g. init_from=<run_dir>/{first.starts_from}/export"
        )


def validate(cfg: DictConfig, multirun: bool = False) -> DictConfig:
    """The typed, checked config (raises :class:`ConfigError` naming the key); ``multirun``: a Hydra ``-m`` job."""
    typed = _typed(cfg)
    try:
        _stage_checks(typed)
        _missing(typed, typed, "", skip=("adapter",) if typed.adapter.name == "none" else ())
        _run_checks(typed)
        if not typed.dry_run:
            _required_check(typed)
            _device_check(typed, multirun)
            _path_check(typed)
    except MissingMandatoryValue as e:
        raise ConfigError(f"{getattr(e, 'full_key', '?')}: required (no value set)") from None
    return typed
