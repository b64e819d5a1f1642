"""The baseline row of the expert-count ablation: one peft LoRA of the MoE-LoRA adapter's trainable size.

Same frozen start (``init_from``), same data and order (``stage_examples("mole", ...)``), same steps,
optimizer, schedule, clipping and seed as the stage ``mole`` runs of the sweep; only the adapter differs.
The rank is the one whose LoRA size is closest to the trainable size of the configured ``adapter``
(routers included), with the adapter's scale α/r kept. Writes ``report.json`` (the pipeline's shape:
``{"mole": result, "baseline": ...}``) and ``mole/metrics.csv`` into the Hydra run directory.

    python experiments/expert_ablation/lora_baseline.py +experiment=mole_demo init_from=DFPO_EXPORT \\
        hydra.run.dir=multirun/expert_ablation_lora
"""
from __future__ import annotations

import os
import time
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from pedgpt.stages.base import CausalLMStage
from pedgpt.stages.mole import PerTaskValLoss
from pedgpt.train import CONF_DIR


def linear_sizes(model: torch.nn.Module, targets: list[str]) -> list[tuple[int, int]]:
    """(in_features, out_features) of every nn.Linear whose name ends with one of ``targets``."""
    return [(m.in_features, m.out_features) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and any(n == t or n.endswith("." + t) for t in targets)]


def matching_rank(target_params: int, sizes: list[tuple[int, int]]) -> int:
    """The LoRA rank r ≥ 1 whose size r·Σ(d_in + d_out) is closest to ``target_params``."""
    per_rank = sum(i + o for i, o in sizes)
    return max(1, round(target_params / per_rank))


def adapter_shape(init_dir: str, adapter: dict[str, Any]) -> tuple[int, list[tuple[int, int]]]:
    """(trainable parameters of the MoE-LoRA ``adapter``, sizes of its target linears) for the model at
    ``init_dir``, built on the meta device (no weights read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from pedgpt.adapters import inject_moe_lora
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(init_dir))
    sizes = linear_sizes(model, list(adapter["target_modules"]))
    inject_moe_lora(model, **adapter)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), sizes


class LoRABaselineStage(PerTaskValLoss, CausalLMStage):
    """A frozen causal LM with a peft LoRA on ``target_modules``; per-task validation NLL as stage ``mole``."""

    stage_name = "lora_baseline"

    def __init__(self, *args: Any, lora: dict[str, Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lora_cfg = dict(lora)

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model
        peft_model = get_peft_model(lm, LoraConfig(**self.lora_cfg))
        peft_model.print_trainable_parameters()
        return peft_model.get_base_model()  # the HF model, its linears now peft LoRA layers, the rest frozen


def build_baseline_module(cfg: DictConfig, init_dir: str, lora: dict[str, Any]) -> LoRABaselineStage:
    """The baseline module with the optimisation settings ``factory.build_module("mole", ...)`` gives the
    MoE-LoRA runs (optimizer, schedule, clipping, accumulation, non-finite guard); single process only."""
    st = cfg.mole
    return LoRABaselineStage(init_dir=init_dir, optimizer=instantiate(st.optimizer), warmup_steps=int(st.warmup_steps),
                             min_lr_ratio=float(st.min_lr_ratio), loss_chunk_size=int(st.loss_chunk_size),
                             dtype=cfg.model.dtype, trust_remote_code=bool(cfg.model.trust_remote_code),
                             activation_checkpointing=bool(st.activation_checkpointing),
                             max_nonfinite_in_a_row=int(cfg.max_nonfinite_in_a_row),
                             gradient_clip_val=cfg.trainer.gradient_clip_val,
                             accumulate_grad_batches=int(cfg.trainer.accumulate_grad_batches), lora=lora)


def run_baseline(cfg: DictConfig, run_dir: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from pedgpt.callbacks import LossHistory, Throughput
    from pedgpt.loggers import build_loggers, close_loggers
    from pedgpt.pipeline import build_trainer, prepare_initial_export
    from pedgpt.report import write_report
    from pedgpt.stages import factory

    t0 = time.time()
    init_dir = prepare_initial_export(cfg, run_dir)
    adapter = factory.adapter_kwargs(cfg)
    if adapter is None:
        raise ValueError("adapter=none: the baseline matches the size of a MoE-LoRA adapter; set adapter=moe_lora")
    moe_params, sizes = adapter_shape(init_dir, adapter)
    rank = matching_rank(moe_params, sizes)
    alpha = adapter["alpha"] / adapter["rank"] * rank
    lora = {"r": rank, "lora_alpha": alpha, "target_modules": list(adapter["target_modules"]), "lora_dropout": 0.0}

    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    train, val, collate, info = factory.stage_examples("mole", cfg, tokenizer)
    dm = factory.build_datamodule("mole", cfg, train, val, collate, info)
    module = build_baseline_module(cfg, init_dir, lora)
    loggers = build_loggers(cfg, "mole", run_dir, group=os.path.basename(os.path.normpath(run_dir)))
    history = LossHistory()
    trainer = build_trainer(cfg, "mole", os.path.join(run_dir, "mole"), loggers, [history, Throughput()])
    trainer.fit(module, datamodule=dm)
    val_metrics = trainer.validate(module, datamodule=dm, verbose=False)[0]
    close_loggers(loggers)
    first, last = history.first_last(0.1)
    result = {"data": info, "train_loss_first": first, "train_loss_last": last,
              "val_loss": float(val_metrics["val/loss"]), "val_loss_by_task": module.val_task_loss,
              "steps": trainer.global_step, "params_total": module.params_total,
              "params_trainable": module.params_trainable, "wall_seconds": round(time.time() - t0, 2)}
    report = {"pipeline": ["mole"], "run_dir": os.path.abspath(run_dir), "init_dir": init_dir, "mole": result,
              "baseline": {"kind": "peft_lora", "rank": rank, "alpha": alpha, "matched_adapter": adapter,
                           "matched_trainable": moe_params}}
    write_report(run_dir, report)
    return report


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from pedgpt.config.validate import validate
    validate(cfg)
    report = run_baseline(cfg, HydraConfig.get().runtime.output_dir)
    r = report["mole"]
    print(f"peft LoRA r={report['baseline']['rank']}: val loss {r['val_loss']:.4f}, "
          f"trainable {100 * r['params_trainable'] / r['params_total']:.4f} %")


if __name__ == "__main__":
    main()
