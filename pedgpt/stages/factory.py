"""Per-stage wiring: which examples a stage trains on, how they are batched, which module trains them."""
from __future__ import annotations

import functools
import logging
from collections import Counter
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pedgpt.data import stage_data as sd
from pedgpt.data.collate import collate_padded, collate_preference
from pedgpt.data.datamodule import ExamplesDataModule
from pedgpt.data.encode import encode_instructions, encode_pairs, encode_texts, flatten_instruction
from pedgpt.data.packing import collate_packed, pack_greedy, packing_efficiency
from pedgpt.data.templates import get_template

log = logging.getLogger(__name__)
STAGES = ("cpt", "sft", "dfpo", "mole")


def _packed(examples: list[dict], max_len: int, pad_id: int, info: dict, key: str):
    lengths = [len(e["input_ids"]) for e in examples]
    rows = pack_greedy(lengths, max_len)
    info[f"{key}_packing_efficiency"] = round(packing_efficiency(lengths, rows, max_len), 4)
    return [[examples[i] for i in r] for r in rows], functools.partial(collate_packed, max_len=max_len, pad_id=pad_id)


def stage_examples(name: str, cfg: DictConfig, tokenizer: Any) -> tuple[list, list, Any, dict]:
    """(train, val, collate, info) for stage ``name``; ``info`` holds counts and skip reasons."""
    st, data = cfg[name], cfg.data
    tmpl = get_template(cfg.model.template)
    max_len, pad = int(st.max_len), tokenizer.pad_token_id
    skipped: Counter = Counter()
    info: dict[str, Any] = {}
    if name == "cpt":
        render = functools.partial(flatten_instruction, template=tmpl, eos_token=tokenizer.eos_token)
        split_docs = {}
        for split in ("train", "dev"):
            epochs = OmegaConf.to_container(st.source_epochs) if split == "train" else None
            docs, mix = sd.hybrid_cpt_texts(sd.corpus_part(data, "cpt", split), sd.corpus_part(data, "sft", split),
                                            float(st.instruction_ratio), render, int(cfg.seed), epochs)
            split_docs[split] = encode_texts(docs, tokenizer, max_len)
            info[f"{split}_mix"] = mix
        train, val = split_docs["train"], split_docs["dev"]
    elif name in ("sft", "mole"):
        recs = {s: sd.corpus_part(data, "sft", s) for s in ("train", "dev")}
        if name == "mole":
            recs = {s: sd.mole_instructions(r, float(st.general_ratio), int(cfg.seed)) for s, r in recs.items()}
        train = encode_instructions(recs["train"], tokenizer, tmpl, max_len, skipped)
        val = encode_instructions(recs["dev"], tokenizer, tmpl, max_len, skipped)
        info["tasks"] = dict(sorted(Counter(r.task for r in recs["train"]).items()))
    elif name == "dfpo":
        train = encode_pairs(sd.corpus_part(data, "preference", "train"), tokenizer, tmpl, max_len, skipped)
        val = encode_pairs(sd.corpus_part(data, "preference", "dev"), tokenizer, tmpl, max_len, skipped)
    else:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    info.update(train_examples=len(train), val_examples=len(val), skipped=sd.count_skips(skipped))
    if not train:
        raise ValueError(f"{name}: no training examples left after encoding (skipped: {info['skipped'] or 'none'}; "
                         f"raise {name}.max_len={max_len} or check the data)")
    if not val:
        raise ValueError(f"{name}: no validation examples (the dev split is empty or everything in it was skipped: "
                         f"{info['skipped'] or 'nothing skipped'}); a stage needs dev data to report val_loss")
    if name == "dfpo":
        collate = functools.partial(collate_preference, pad_id=pad)
    elif st.get("packing") and name != "mole":
        train, collate = _packed(train, max_len, pad, info, "train")
        val, _ = _packed(val, max_len, pad, info, "val")
    else:
        collate = functools.partial(collate_padded, pad_id=pad)
    return train, val, collate, info


def build_datamodule(name: str, cfg: DictConfig, train: list, val: list, collate: Any, info: dict) -> ExamplesDataModule:
    st = cfg[name]
    return ExamplesDataModule(train, val, collate, int(st.batch_size), int(st.val_batch_size), int(cfg.seed), info,
                              max_len=int(st.max_len))


def adapter_kwargs(cfg: DictConfig) -> dict | None:
    a = OmegaConf.to_container(cfg.adapter, resolve=True)
    if a.pop("name", "none") == "none":
        return None
    a.pop("type", None)
    extra = a.pop("router_kwargs", {}) or {}
    return {**a, **extra}


def build_module(name: str, cfg: DictConfig, init_dir: str, ref_dir: str | None = None):
    from pedgpt.stages.base import CausalLMStage
    from pedgpt.stages.dfpo import DFPOStage
    from pedgpt.stages.mole import MoLEStage

    st = cfg[name]
    common = dict(init_dir=init_dir, optimizer=instantiate(st.optimizer), warmup_steps=int(st.warmup_steps),
                  min_lr_ratio=float(st.min_lr_ratio), loss_chunk_size=int(st.loss_chunk_size),
                  dtype=cfg.model.dtype, trust_remote_code=bool(cfg.model.trust_remote_code),
                  activation_checkpointing=bool(st.activation_checkpointing),
                  max_nonfinite_in_a_row=int(cfg.max_nonfinite_in_a_row),
                  gradient_clip_val=cfg.trainer.gradient_clip_val,
                  accumulate_grad_batches=int(cfg.trainer.accumulate_grad_batches),
                  fsdp=(OmegaConf.to_container(cfg.trainer.fsdp, resolve=True) or {}) if cfg.trainer.strategy == "fsdp" else None)
    if name == "dfpo":
        policy_adapter = adapter_kwargs(cfg) if st.ref == "adapter_disabled" else None
        return DFPOStage(**common, beta=float(st.beta), mu=float(st.mu), loss=st.loss,
                         label_smoothing=float(st.label_smoothing), ref=st.ref, ref_dir=ref_dir, adapter=policy_adapter)
    if name == "mole":
        kw = adapter_kwargs(cfg)
        if kw is None:
            raise ValueError("stage mole needs an adapter: set adapter=moe_lora")
        return MoLEStage(**common, adapter=kw)
    module = CausalLMStage(**common)
    module.stage_name = name
    return module
