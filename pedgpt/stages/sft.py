"""Stage 2: full-parameter supervised fine-tuning on (multi-turn) instructions, loss on assistant turns only."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from pedgpt.data import stage_data as sd
from pedgpt.data.encode import encode_each, encode_instruction, encode_instructions
from pedgpt.data.templates import get_template
from pedgpt.data.token_store import SPLITS, Encoding
from pedgpt.stages.module import CausalLMModule, module_settings
from pedgpt.stages.registry import Stage, StageConfig, register_stage


@dataclass
class SFTConfig(StageConfig):
    packing: bool = MISSING  # conversations packed into rows with a block-diagonal causal mask


class SFTModule(CausalLMModule):
    stage_name = "sft"


def instruction_examples(stage: Stage, records: dict[str, list], tokenizer: Any) -> tuple[list, list, dict]:
    """Encoded train / dev instructions of a stage (assistant-turn labels, task ids) and their counts."""
    tmpl, max_len = get_template(stage.cfg.model.template), int(stage.st.max_len)
    skipped: Counter = Counter()
    train = encode_instructions(records["train"], tokenizer, tmpl, max_len, skipped)
    val = encode_instructions(records["dev"], tokenizer, tmpl, max_len, skipped)
    info = {
        "tasks": dict(sorted(Counter(r.task for r in records["train"]).items())),
        "train_examples": len(train),
        "val_examples": len(val),
        "skipped": sd.count_skips(skipped),
    }
    return train, val, info


def instruction_encoding(stage: Stage, records: dict[str, list], tokenizer: Any) -> Encoding:
    """What an instruction stage tokenizes: its train / dev records, each encoded by :func:`encode_instruction`
    (assistant-turn labels, task id)."""
    encode = functools.partial(
        encode_each,
        encode_one=encode_instruction,
        tokenizer=tokenizer,
        template=get_template(stage.cfg.model.template),
        max_len=int(stage.st.max_len),
    )
    info = {"tasks": dict(sorted(Counter(r.task for r in records["train"]).items()))}
    return Encoding(records, encode, {"input_ids": "ids", "labels": "ids", "task_id": "int"}, info)


@register_stage
class SFT(Stage):
    name = "sft"
    config_class = SFTConfig
    corpus_parts = ("sft",)

    def encoding(self, tokenizer: Any) -> Encoding:
        records = {s: sd.corpus_part(self.cfg.data, "sft", s) for s in SPLITS}
        return instruction_encoding(self, records, tokenizer)

    def module(self, init_dir: str) -> SFTModule:
        return SFTModule(**module_settings(self.cfg, self.key(), init_dir))
