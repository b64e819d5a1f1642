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
from pedgpt.data.encode import encode_text_batch, flatten_instruction
from pedgpt.data.templates import get_template
from pedgpt.data.token_store import SPLITS, Encoding
from pedgpt.stages.module import CausalLMModule, module_settings
from pedgpt.stages.registry import Stage, StageConfig, register_stage


@dataclass
class CPTConfig(StageConfig):
    packing: bool = MISSING  # documents packed into rows with a block-diagonal causal mask
    instruction_ratio: float = MISSING  # share of instruction documents in the mixture, in [0, 1)
    source_epochs: dict[str, float] = MISSING  # epochs per upstream source of plain text (default 1)


class CPTModule(CausalLMModule):
    stage_name = "cpt"


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

    def store_settings(self) -> dict[str, Any]:
        st = self.st
        epochs = OmegaConf.to_container(st.source_epochs) if st.source_epochs else {}
        return {"instruction_ratio": float(st.instruction_ratio), "source_epochs": epochs, "seed": int(self.cfg.seed)}

    def encoding(self, tokenizer: Any) -> Encoding:
        cfg, st = self.cfg, self.st
        render = functools.partial(
            flatten_instruction, template=get_template(cfg.model.template), eos_token=tokenizer.eos_token
        )
        items: dict[str, list[str]] = {}
        info: dict[str, Any] = {}
        for split in SPLITS:
            epochs = OmegaConf.to_container(st.source_epochs) if split == "train" else None
            items[split], info[f"{split}_mix"] = sd.hybrid_cpt_texts(
                sd.corpus_part(cfg.data, "cpt", split),
                sd.corpus_part(cfg.data, "sft", split),
                float(st.instruction_ratio),
                render,
                int(cfg.seed),
                epochs,
            )
        encode = functools.partial(encode_text_batch, tokenizer=tokenizer, max_len=int(st.max_len))
        return Encoding(items, encode, {"input_ids": "ids"}, info)

    def module(self, init_dir: str) -> CPTModule:
        return CPTModule(**module_settings(self.cfg, self.key(), init_dir))
