"""Stage 1: hybrid instruction continuous pre-training — plain medical text mixed with instructions flattened to
text (``cpt.instruction_ratio`` of the documents), packed into rows without attention across documents."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING, OmegaConf

from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import STAGE_RULES, Rule
from pedgpt.data import stage_data as sd
from pedgpt.data.collate import collate_padded
from pedgpt.data.encode import encode_texts, flatten_instruction
from pedgpt.data.packing import packed_rows
from pedgpt.data.templates import get_template
from pedgpt.stages.module import CausalLMModule, module_settings
from pedgpt.stages.registry import Stage, StageConfig, StageData, register_stage


@dataclass
class CPTConfig(StageConfig):
    packing: bool = MISSING  # documents packed into rows with a block-diagonal causal mask
    instruction_ratio: float = MISSING  # share of instruction documents in the mixture, in [0, 1)
    source_epochs: dict[str, float] = MISSING  # epochs per upstream source of plain text (default 1)


class CPTModule(CausalLMModule):
    stage_name = "cpt"


def packed_or_padded(
    train: list[dict], val: list[dict], packing: bool, max_len: int, pad_id: int, info: dict[str, Any]
) -> StageData:
    """A stage's examples as packed rows (``packing``) or padded sequences; packing efficiency into ``info``."""
    if not packing:
        return StageData(train, val, functools.partial(collate_padded, pad_id=pad_id), info)
    train_rows, collate, eff = packed_rows(train, max_len, pad_id)
    val_rows, _, val_eff = packed_rows(val, max_len, pad_id)
    info.update(train_packing_efficiency=round(eff, 4), val_packing_efficiency=round(val_eff, 4))
    return StageData(train_rows, val_rows, collate, info)


@register_stage
class CPT(Stage):
    name = "cpt"
    config_class = CPTConfig
    corpus_parts = ("cpt", "sft")
    generates = False  # a base model continues text; it does not answer prompts yet
    rules = (*STAGE_RULES, Rule("instruction_ratio", low=0, high=1, high_open=True))

    def check(self) -> None:
        for source, epochs in (self.st.source_epochs or {}).items():
            if float(epochs) < 0:
                raise ConfigError(f"cpt.source_epochs.{source}: must be >= 0, got {epochs}")

    def examples(self, tokenizer: Any) -> StageData:
        cfg, st = self.cfg, self.st
        render = functools.partial(
            flatten_instruction, template=get_template(cfg.model.template), eos_token=tokenizer.eos_token
        )
        info: dict[str, Any] = {}
        docs = {}
        for split in ("train", "dev"):
            epochs = OmegaConf.to_container(st.source_epochs) if split == "train" else None
            texts, mix = sd.hybrid_cpt_texts(
                sd.corpus_part(cfg.data, "cpt", split),
                sd.corpus_part(cfg.data, "sft", split),
                float(st.instruction_ratio),
                render,
                int(cfg.seed),
                epochs,
            )
            docs[split] = encode_texts(texts, tokenizer, int(st.max_len))
            info[f"{split}_mix"] = mix
        info.update(train_examples=len(docs["train"]), val_examples=len(docs["dev"]), skipped={})
        return packed_or_padded(
            docs["train"], docs["dev"], bool(st.packing), int(st.max_len), tokenizer.pad_token_id, info
        )

    def module(self, init_dir: str) -> CPTModule:
        return CPTModule(**module_settings(self.cfg, self.key(), init_dir))
