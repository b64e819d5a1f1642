"""The stage registry: everything the pipeline, validation, the planner and the report need to know about a stage.

A stage is one file in ``pedgpt/stages/`` (plus its values in ``conf/stage/<name>.yaml``): a config dataclass
(types only; registered with Hydra's ConfigStore as ``stage/<name>_schema``, which the YAML extends), a
LightningModule, and a :class:`Stage` subclass registered with :func:`register_stage` that says how its
examples are built, what runs before training (:meth:`Stage.prepare`) and what it adds to the report.

Stages from outside the package register the same way: list their modules in ``$PEDGPT_PLUGINS``
(comma-separated) or under the ``pedgpt.stages`` entry-point group, and :func:`load_plugins` imports them
before the config is composed. A plugin stage without a YAML file stores its values in the ConfigStore as a
dataclass *instance* (``stage/<name>``); the pipeline fills ``cfg.<name>`` from it when the run's config has
no such key.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import STAGE_RULES, Rule
from pedgpt.data.collate import collate_padded
from pedgpt.data.packing import collate_packed
from pedgpt.data.prompts import SamplePrompt, held_out_prompts
from pedgpt.data.stage_data import corpus_part
from pedgpt.data.token_store import SPLITS, Encoding, PackedRows, StoredExamples, TokenStore

PLUGINS_ENV = "PEDGPT_PLUGINS"
ENTRY_POINT_GROUP = "pedgpt.stages"


@dataclass
class OptimizerConfig:
    """``torch.optim`` class by ``_target_`` (instantiated ``_partial_``: the module passes the parameters).
    ``betas`` / ``eps`` / ``momentum`` left null are not passed (optimizers differ in what they take)."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    betas: Any = None  # [beta1, beta2] for Adam-type optimizers
    eps: Any = None
    momentum: Any = None


@dataclass
class StageConfig:
    """Settings every stage has (types only; the values live in ``conf/stage/<name>.yaml``)."""

    max_steps: int = MISSING
    batch_size: int = MISSING  # micro-batch per process; the optimizer step sees × accumulate × processes
    val_batch_size: int = MISSING
    max_len: int = MISSING
    log_every_n_steps: int = MISSING
    val_check_interval: int = MISSING
    warmup_steps: int = MISSING
    min_lr_ratio: float = MISSING
    loss_chunk_size: int = MISSING  # > 0: the LM head runs in checkpointed chunks of this many tokens
    activation_checkpointing: bool = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class StageData:
    """A stage's encoded examples: ``train`` / ``val`` items for the dataloader, the ``collate`` function that
    batches them, and ``info`` (counts, skip reasons, packing efficiency) for the report."""

    train: Sequence
    val: Sequence
    collate: Callable[[list], dict]
    info: dict[str, Any]


class Stage:
    """A registered stage. Instantiated per run with the composed config; subclasses override the hooks.

    Class attributes: ``name`` (the key in ``pipeline``), ``config_class`` (its typed schema), ``config_key``
    (the config node it reads, default ``name``; a variant may share another stage's settings),
    ``corpus_parts`` (PedCorpus sub-directories it reads from ``data.root``), ``starts_from`` (the stage whose
    export a real-model run must start from when this stage comes first), ``rows_per_example`` (sequences per
    example in a batch, for the planner), ``generates`` (whether generation scores are logged while it trains:
    stages that teach instruction following), ``rules`` (allowed values of its settings, checked at startup:
    :data:`~pedgpt.config.ranges.STAGE_RULES` plus the stage's own keys).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = StageConfig
    config_key: ClassVar[str] = ""
    corpus_parts: ClassVar[tuple[str, ...]] = ()
    starts_from: ClassVar[str | None] = None
    rows_per_example: ClassVar[int] = 1
    generates: ClassVar[bool] = True
    rules: ClassVar[tuple[Rule, ...]] = STAGE_RULES

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.st = cfg[self.key()]

    @classmethod
    def key(cls) -> str:
        return cls.config_key or cls.name

    # -- hooks ---------------------------------------------------------------------------------------
    def check(self) -> None:
        """Stage-specific startup checks of the config; raise :class:`ConfigError` naming the key."""

    def check_data(self, root: str) -> None:
        """Checks of a built PedCorpus at ``root`` beyond the presence of ``corpus_parts`` (startup)."""

    def encoding(self, tokenizer: Any) -> Encoding | None:
        """What this stage tokenizes (items per split, how, which columns), for the token store; None: the stage
        builds its examples in memory with :meth:`examples` instead."""
        return None

    def store_settings(self) -> dict[str, Any]:
        """The settings besides the data, tokenizer, template and ``max_len`` that change this stage's encoded
        examples (part of the token store's key)."""
        return {}

    def collate(self, tokenizer: Any) -> Callable[[list], dict]:
        """Batches of (unpacked) examples → the model's input."""
        return functools.partial(collate_padded, pad_id=tokenizer.pad_token_id)

    @property
    def pack_len(self) -> int | None:
        """Rows of this many tokens when the stage packs its examples (``<key>.packing``), else None."""
        return int(self.st.max_len) if self.st.get("packing") else None

    def from_store(self, store: TokenStore) -> tuple[Sequence, Sequence]:
        """(train, val) datasets over a token store: its examples, or its packed rows."""
        labels_from_inputs = "labels" not in store.columns
        views = [StoredExamples(store.split(s), store.key, labels_from_inputs) for s in SPLITS]
        if not self.pack_len:
            return views[0], views[1]
        train_rows, val_rows = (store.rows(s) for s in SPLITS)
        assert train_rows is not None and val_rows is not None, store.path
        return PackedRows(views[0], train_rows), PackedRows(views[1], val_rows)

    def stage_data(self, train: Sequence, val: Sequence, info: dict[str, Any], tokenizer: Any) -> StageData:
        """The :class:`StageData` of encoded ``train`` / ``val`` examples (packed rows when the stage packs)."""
        if not self.pack_len:
            return StageData(train, val, self.collate(tokenizer), info)
        collate = functools.partial(collate_packed, max_len=self.pack_len, pad_id=tokenizer.pad_token_id)
        return StageData(train, val, collate, info)

    def examples(self, tokenizer: Any) -> StageData:
        """The examples of a stage without :meth:`encoding`, built in memory at every start."""
        raise NotImplementedError(f"stage {self.name}: define encoding() (token store) or examples() (in memory)")

    def prepare(self, data: StageData, init_dir: str, tokenizer: Any) -> dict[str, Any]:
        """Work before training (e.g. DFPO's reference log-probs); returns entries for the stage's result."""
        return {}

    def sample_prompts(self, per_task: int) -> list[SamplePrompt]:
        """The held-out prompts its generation scores answer: ``per_task`` dev conversations per pediatric task."""
        return held_out_prompts(corpus_part(self.cfg.data, "sft", "dev"), per_task, int(self.cfg.seed))

    def module(self, init_dir: str) -> Any:
        """The LightningModule that trains this stage, starting from the HF export ``init_dir``."""
        raise NotImplementedError

    def plan_model(self, model: Any) -> Any:
        """The dry-run planner's meta-device model after this stage's changes (e.g. injected adapters)."""
        return model

    def report(self, module: Any, val_metrics: dict[str, float], data: StageData, out: ReportSink) -> dict[str, Any]:
        """Entries this stage adds to its ``report.json`` section (after training and the final validation)."""
        return {}

    @classmethod
    def markdown(cls, result: dict[str, Any], run_dir: str) -> list[str]:
        """Lines of this stage's section in ``report.md`` (empty: none)."""
        return []

    @classmethod
    def console(cls, result: dict[str, Any]) -> str:
        """A short note for the ``extra`` column of the console table."""
        return ""


@dataclass
class ReportSink:
    """Where a stage's report hook may write: its directory, the run's loggers, and whether this process writes
    files (rank 0)."""

    stage_dir: str
    loggers: list = field(default_factory=list)
    writer: bool = True


_REGISTRY: dict[str, type[Stage]] = {}


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: add a :class:`Stage` to the registry and its config schema to Hydra's ConfigStore."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__}: a stage needs a name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"stage {cls.name!r} is already registered ({_REGISTRY[cls.name].__qualname__})")
    _REGISTRY[cls.name] = cls
    ConfigStore.instance().store(group="stage", name=f"{cls.name}_schema", node=cls.config_class)
    return cls


def get_stage(name: str) -> type[Stage]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"pipeline: unknown stage {name!r}; registered stages: {', '.join(sorted(_REGISTRY))}"
        ) from None


def stage_names() -> list[str]:
    return list(_REGISTRY)


def stored_values(name: str) -> Any | None:
    """A plugin stage's values stored in the ConfigStore as ``stage/<name>`` (a dataclass instance), or None."""
    repo = ConfigStore.instance().repo.get("stage", {})
    node = repo.get(f"{name}.yaml")
    return None if node is None else node.node


def load_plugins() -> list[str]:
    """Import stage modules named in ``$PEDGPT_PLUGINS`` and in the ``pedgpt.stages`` entry-point group."""
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    loaded = []
    for module in names:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import {module!r} ({e})") from None
        loaded.append(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
        loaded.append(ep.value)
    return loaded
