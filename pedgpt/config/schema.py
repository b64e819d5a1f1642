"""Structured schemas of the composed training config, used to reject unknown keys and wrong types.

Hydra already refuses unknown keys given on the command line; a typo inside a YAML file (a stage file,
an experiment overlay) would otherwise be silently ignored. Validating the composed config against these
dataclasses catches both and names the full key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class StageSchema:
    max_steps: int = 100
    batch_size: int = 8
    val_batch_size: int = 16
    max_len: int = 256
    packing: bool = False
    log_every_n_steps: int = 5
    val_check_interval: int = 50
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    loss_chunk_size: int = 0
    activation_checkpointing: bool = False
    optimizer: dict[str, Any] = field(default_factory=dict)


@dataclass
class CPTSchema(StageSchema):
    instruction_ratio: float = 0.3
    source_epochs: dict[str, float] = field(default_factory=dict)


@dataclass
class DFPOSchema(StageSchema):
    beta: float = 0.1
    mu: float = 1.0
    loss: str = "dfpo"
    label_smoothing: float = 0.0
    ref: str = "cached"


@dataclass
class MoLESchema(StageSchema):
    general_ratio: float = 0.15


@dataclass
class ModelSchema:
    name: str = "tiny"
    path: Optional[str] = None
    dir_name: Optional[str] = None
    build_from_config: bool = True
    trust_remote_code: bool = False
    dtype: str = "float32"
    template: str = "human_assistant"
    vocab_size: int = 3000
    arch: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSchema:
    root: Optional[str] = None
    demo_seed: int = 0


@dataclass
class AdapterSchema:
    name: str = "none"
    target_modules: list[str] = field(default_factory=list)
    rank: int = 8
    alpha: float = 16
    num_universal: int = 1
    num_specific: int = 3
    router: str = "noisy_token"
    dropout: float = 0.0
    router_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FSDPSchema:
    param_dtype: str = "bfloat16"
    reduce_dtype: str = "float32"
    reshard_after_forward: bool = True


@dataclass
class TrainerSchema:
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: Optional[int] = None
    log_every_n_steps: Optional[int] = None
    val_check_interval: Optional[int] = None
    limit_val_batches: Optional[float] = None
    gradient_clip_val: Optional[float] = None
    accumulate_grad_batches: int = 1
    deterministic: bool = False
    fsdp: FSDPSchema = field(default_factory=FSDPSchema)


@dataclass
class LoggerSchema:
    kinds: list[str] = field(default_factory=lambda: ["csv"])
    csv_flush_every_n_steps: int = 5
    project: str = "pedgpt"
    entity: Optional[str] = None
    group: Optional[str] = None
    mode: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class PathsSchema:
    output_root: str = "outputs"
    cache_dir: str = "~/.cache/pedgpt"


@dataclass
class PlanSchema:
    gpu_memory_gb: float = 80.0
    usable_fraction: float = 0.9


@dataclass
class TrainSchema:
    name: str = "demo"
    pipeline: list[str] = field(default_factory=lambda: ["cpt", "sft", "dfpo", "mole"])
    seed: int = 42
    init_from: Optional[str] = None
    ckpt_path: Optional[str] = None
    checkpoint_every_n_steps: int = 0
    keep_last_checkpoints: int = 3
    max_nonfinite_in_a_row: int = 5
    dry_run: bool = False
    evaluate: bool = False
    eval_suites: list[str] = field(default_factory=lambda: ["medkqa", "evidiag", "trerecom", "preference"])
    eval_limit: Optional[int] = 32
    eval_max_new_tokens: int = 64
    progress_bar: bool = True
    cpt: CPTSchema = field(default_factory=CPTSchema)
    sft: StageSchema = field(default_factory=StageSchema)
    dfpo: DFPOSchema = field(default_factory=DFPOSchema)
    mole: MoLESchema = field(default_factory=MoLESchema)
    model: ModelSchema = field(default_factory=ModelSchema)
    data: DataSchema = field(default_factory=DataSchema)
    adapter: AdapterSchema = field(default_factory=AdapterSchema)
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    logger: LoggerSchema = field(default_factory=LoggerSchema)
    paths: PathsSchema = field(default_factory=PathsSchema)
    plan: PlanSchema = field(default_factory=PlanSchema)
