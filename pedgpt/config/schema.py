"""Typed schemas of the Hydra configs — types only, no defaults: every value lives in one YAML file under
``conf/`` (``???`` / ``MISSING`` here means "the YAML must set it").

Each group's YAML files extend their schema (``defaults: [schema, _self_]``), so Hydra types and checks them
while composing: an unknown key or a wrong type in a YAML file or on the command line fails at startup with
the key's name. Stage settings are typed by each stage's own dataclass (``pedgpt.stages``). The schemas are
stored in Hydra's ConfigStore by :func:`register_schemas` (called when ``pedgpt.config`` is imported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ArchConfig:
    """A transformers config for a model built from scratch (tiny) or planned on the meta device; null keys are
    left to the architecture's defaults."""

    model_type: str = MISSING
    vocab_size: int | None = None
    hidden_size: int = MISSING
    intermediate_size: int = MISSING
    num_hidden_layers: int = MISSING
    num_attention_heads: int = MISSING
    num_key_value_heads: int | None = None
    max_position_embeddings: int | None = None
    rms_norm_eps: float | None = None
    rope_theta: float | None = None
    tie_word_embeddings: bool | None = None
    position_embedding: str | None = None  # Baichuan2: rope | alibi
    attention_bias: bool | None = None


@dataclass
class ModelConfig:
    name: str = MISSING
    path: str | None = MISSING  # local directory of a real base model (null: $PEDGPT_MODEL_DIR/dir_name)
    dir_name: str | None = MISSING
    build_from_config: bool = MISSING  # true: a fresh model from `arch` with a tokenizer trained in-process
    trust_remote_code: bool = MISSING
    dtype: str = MISSING  # float32 | bfloat16 | float16
    template: str = MISSING  # chat template (pedgpt.data.templates)
    attention: str = MISSING  # attention path: sdpa
    target_modules: list[str] = MISSING  # the family's linear layers MoE-LoRA adapts (adapter.target_modules)
    vocab_size: int = MISSING  # tokenizer size of a model built from config
    arch: ArchConfig = field(default_factory=ArchConfig)


@dataclass
class DataConfig:
    root: str | None = MISSING  # a built PedCorpus; null: the bundled demo corpus
    demo_seed: int = MISSING
    num_proc: int = MISSING  # processes that tokenize into the token store (first run of a data/tokenizer)


@dataclass
class RouterKwargs:
    """Router options (null: the router's own default; each router accepts only its own)."""

    top_k: int | None = None
    balance_weight: float | None = None
    train_noise: bool | None = None
    aux_weight: float | None = None


@dataclass
class AdapterConfig:
    name: str = MISSING  # moe_lora | none
    target_modules: list[str] = MISSING
    rank: int = MISSING
    alpha: float = MISSING
    num_universal: int = MISSING
    num_specific: int = MISSING
    router: str = MISSING
    dropout: float = MISSING
    router_kwargs: RouterKwargs = field(default_factory=RouterKwargs)


@dataclass
class FSDPConfig:
    param_dtype: str = MISSING
    reduce_dtype: str = MISSING
    reshard_after_forward: bool = MISSING


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` arguments; null ``max_steps`` / ``log_every_n_steps`` / ``val_check_interval`` take
    each stage's own value."""

    accelerator: str = MISSING
    devices: Any = MISSING
    num_nodes: int = MISSING
    strategy: str = MISSING  # auto | ddp | fsdp
    precision: str = MISSING
    max_steps: int | None = MISSING
    log_every_n_steps: int | None = MISSING
    val_check_interval: int | None = MISSING
    limit_val_batches: Any = MISSING  # an int counts batches, a float in (0, 1] is a fraction (Lightning's rule)
    gradient_clip_val: float | None = MISSING
    accumulate_grad_batches: int = MISSING
    deterministic: bool = MISSING
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)


@dataclass
class LoggerConfig:
    kinds: list[str] = MISSING  # csv and/or wandb
    csv_flush_every_n_steps: int = MISSING
    project: str = MISSING
    entity: str | None = MISSING
    group: str | None = MISSING
    mode: str | None = MISSING
    tags: list[str] = MISSING


@dataclass
class PathsConfig:
    output_root: str = MISSING
    cache_dir: str = MISSING


@dataclass
class PlanConfig:
    gpu_memory_gb: float = MISSING
    usable_fraction: float = MISSING


@dataclass
class GenConfig:
    """Generation scores while training (stages that teach instruction following)."""

    enabled: bool = MISSING
    every_n_val: int = MISSING  # every this many validations (the stage's final validation always)
    samples_per_task: int = MISSING  # fixed, seeded held-out prompts per pediatric task
    max_new_tokens: int = MISSING
    batch_size: int = MISSING
    metric_tokenizer: str = MISSING  # jieba (the paper's) | char


@dataclass
class TrainConfig:
    """The run-wide keys of ``conf/train.yaml``; each stage's node (``cpt``, ``sft`` ...) is typed by its stage."""

    name: str = MISSING
    pipeline: list[str] = MISSING
    seed: int = MISSING
    init_from: str | None = MISSING
    ckpt_path: str | None = MISSING
    checkpoint_every_n_steps: int = MISSING
    keep_last_checkpoints: int = MISSING
    max_nonfinite_in_a_row: int = MISSING
    dry_run: bool = MISSING
    evaluate: bool = MISSING
    eval_suites: list[str] = MISSING
    eval_limit: int | None = MISSING
    eval_max_new_tokens: int = MISSING
    progress_bar: bool = MISSING
    plan: PlanConfig = field(default_factory=PlanConfig)
    gen: GenConfig = field(default_factory=GenConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


# -- evaluate.yaml ---------------------------------------------------------------------------------------
@dataclass
class GenerationConfig:
    preset: str = MISSING
    max_new_tokens: int | None = MISSING
    max_prompt_len: int | None = MISSING
    batch_size: int = MISSING
    seed: int | None = MISSING


@dataclass
class EvalMetricsConfig:
    tokenizer: str = MISSING  # jieba | char
    empty: str = MISSING  # how an empty prediction or reference is scored


@dataclass
class CMMLUConfig:
    primary: str = MISSING  # raw | norm
    batch_size: int = MISSING


@dataclass
class PreferenceEvalConfig:
    reference: str | None = MISSING
    beta: float = MISSING
    batch_size: int = MISSING
    max_len: int = MISSING


@dataclass
class EvalLoggerConfig:
    wandb: bool = MISSING
    project: str = MISSING
    entity: str | None = MISSING
    mode: str | None = MISSING
    group: str | None = MISSING  # a W&B group to join (a training run's)


@dataclass
class EvaluateConfig:
    model_dir: str = MISSING
    adapter_dir: str | None = MISSING
    suites: list[str] = MISSING
    data_root: str | None = MISSING
    cmd_file: str | None = MISSING
    limit: int | None = MISSING
    out_dir: str | None = MISSING
    device: str = MISSING
    dtype: str = MISSING
    trust_remote_code: bool = MISSING
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    metrics: EvalMetricsConfig = field(default_factory=EvalMetricsConfig)
    cmmlu: CMMLUConfig = field(default_factory=CMMLUConfig)
    preference: PreferenceEvalConfig = field(default_factory=PreferenceEvalConfig)
    logger: EvalLoggerConfig = field(default_factory=EvalLoggerConfig)


# -- build.yaml (the PedCorpus builder) -------------------------------------------------------------------
@dataclass
class BuildSourcesConfig:
    encodings: dict[str, str] = MISSING  # file-name glob → encoding
    identity: dict[str, str] = MISSING  # fills {{name}} / {{author}}
    tasks_by_source: dict[str, str] = MISSING
    reference_free_suites: dict[str, str] = MISSING


@dataclass
class BuildKGConfig:
    task_departments: list[str] = MISSING
    cpt_all_diseases: bool = MISSING


@dataclass
class BuildSplitsConfig:
    ratios: dict[str, float] = MISSING
    upstream: dict[str, str] = MISSING
    salt: str = MISSING


@dataclass
class BuildSuitesConfig:
    fixed: list[str] = MISSING
    by_source: dict[str, str] = MISSING
    by_task: dict[str, str] = MISSING


@dataclass
class BuildCleanConfig:
    max_message_chars: int = MISSING
    max_text_chars: int = MISSING
    min_answer_chars: int = MISSING
    html_remnants: bool = MISSING


@dataclass
class BuildDedupConfig:
    ngram: int = MISSING
    threshold: float = MISSING
    num_perm: int = MISSING
    seed: int = MISSING
    max_chars: int = MISSING
    min_question_chars: int = MISSING


@dataclass
class BuildStatsConfig:
    tokenizer: str | None = MISSING


@dataclass
class BuildRewriteConfig:
    enabled: bool = MISSING
    base_url: str | None = MISSING
    model: str | None = MISSING
    api_key_env: str = MISSING
    tasks: list[str] = MISSING
    timeout_s: float = MISSING


@dataclass
class BuildConfig:
    source_dir: str = MISSING
    out_dir: str = MISSING
    seed: int = MISSING
    skip_invalid: bool = MISSING
    progress: bool = MISSING
    include: list[str] = MISSING
    exclude: list[str] = MISSING
    formats: dict[str, str] = MISSING
    sources: BuildSourcesConfig = field(default_factory=BuildSourcesConfig)
    kg: BuildKGConfig = field(default_factory=BuildKGConfig)
    splits: BuildSplitsConfig = field(default_factory=BuildSplitsConfig)
    suites: BuildSuitesConfig = field(default_factory=BuildSuitesConfig)
    clean: BuildCleanConfig = field(default_factory=BuildCleanConfig)
    dedup: BuildDedupConfig = field(default_factory=BuildDedupConfig)
    stats: BuildStatsConfig = field(default_factory=BuildStatsConfig)
    rewrite: BuildRewriteConfig = field(default_factory=BuildRewriteConfig)


def register_schemas() -> None:
    cs = ConfigStore.instance()
    for group, node in (
        ("model", ModelConfig),
        ("data", DataConfig),
        ("adapter", AdapterConfig),
        ("trainer", TrainerConfig),
        ("logger", LoggerConfig),
        ("paths", PathsConfig),
    ):
        cs.store(group=group, name="schema", node=node)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="build_schema", node=BuildConfig)
