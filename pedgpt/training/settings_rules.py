"""Allowed values of the run-wide training settings (``conf/train.yaml`` and its groups), checked at startup by
:func:`pedgpt.training.validate.validate` with :func:`pedgpt.config.ranges.check_rules`; each stage's keys are
checked by its own ``rules``, ``adapter.*`` by :data:`pedgpt.config.ranges.ADAPTER_RULES`."""

from __future__ import annotations

from pedgpt.common.constants import DTYPES
from pedgpt.common.logs import WANDB_MODES
from pedgpt.config.ranges import Rule, at_least, batches_or_fraction, one_of, positive
from pedgpt.metrics.text import TOKENIZERS
from pedgpt.models.attention import DENSE_MODES, PACKED_MODES
from pedgpt.training.strategy import precision_names

#: the attention implementations ``model.attention`` may name (transformers' ``attn_implementation``): the
#: dense-mask ones and pedgpt's packed ones (``auto`` / ``flex``, :mod:`pedgpt.models.attention`)
ATTENTION_NAMES = DENSE_MODES + PACKED_MODES
_STEPS = "null takes each stage's own value; the run trains by optimizer steps (there is no epoch bound)"

RUN_RULES: tuple[Rule, ...] = (
    Rule("seed", low=0, high=2**32 - 1, integer=True),
    at_least("checkpoint_every_n_steps", 0, hint="0 turns periodic checkpoints off"),
    at_least("keep_last_checkpoints", 1),
    at_least("max_nonfinite_in_a_row", 0),
    at_least("eval_limit", 1, nullable=True),
    at_least("eval_max_new_tokens", 1),
    at_least("gen.every_n_val", 1),
    at_least("gen.samples_per_task", 1),
    at_least("gen.max_new_tokens", 1),
    at_least("gen.batch_size", 1),
    one_of("gen.metric_tokenizer", TOKENIZERS),
    positive("plan.gpu_memory_gb"),
    Rule("plan.usable_fraction", low=0, high=1, low_open=True),
    one_of("model.dtype", tuple(DTYPES)),
    one_of("model.attention", ATTENTION_NAMES),
    at_least("model.vocab_size", 8),
    at_least("data.num_proc", 1),
    one_of("adapter.name", ("moe_lora", "none")),
    one_of("trainer.precision", precision_names()),
    at_least("trainer.max_steps", 1, nullable=True, hint=_STEPS),
    at_least("trainer.log_every_n_steps", 1, nullable=True),
    at_least("trainer.val_check_interval", 1, nullable=True),
    Rule(
        "trainer.limit_val_batches",
        test=batches_or_fraction,
        text="a whole number of batches >= 1 or a fraction of the validation set in (0.0, 1.0]",
        nullable=True,
    ),
    positive("trainer.gradient_clip_val", nullable=True, hint="null turns clipping off"),
    at_least("trainer.accumulate_grad_batches", 1),
    at_least("trainer.num_nodes", 1),
    one_of("trainer.fsdp.param_dtype", tuple(DTYPES)),
    one_of("trainer.fsdp.reduce_dtype", tuple(DTYPES)),
    at_least("logger.csv_flush_every_n_steps", 1),
    one_of("logger.mode", WANDB_MODES, nullable=True),
)
