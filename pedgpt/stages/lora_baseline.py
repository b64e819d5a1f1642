"""The expert-count ablation's baseline, a registered variant of stage ``mole``: one peft LoRA of the MoE-LoRA
adapter's trainable size.

It reads stage ``mole``'s settings (``config_key = "mole"``) and data, so the same frozen start
(``init_from``), data and order, steps, optimizer, schedule, clipping and seed as the ``mole`` runs of a sweep
apply; only the adapter differs. The rank is the one whose LoRA size is closest to the trainable size of the
configured ``adapter`` (routers included), with the adapter's scale α/r kept::

    python -m pedgpt.train +experiment=mole_demo pipeline=[lora_baseline] init_from=DFPO_EXPORT
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

from pedgpt.adapters import inject_moe_lora
from pedgpt.common.errors import ConfigError
from pedgpt.stages.module import CausalLMModule, adapter_settings, module_settings
from pedgpt.stages.mole import MoLE, PerTaskValLoss
from pedgpt.stages.registry import ReportSink, StageData, register_stage


def linear_sizes(model: torch.nn.Module, targets: list[str]) -> list[tuple[int, int]]:
    """(in_features, out_features) of every nn.Linear whose name ends with one of ``targets``."""
    return [
        (m.in_features, m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and any(n == t or n.endswith("." + t) for t in targets)
    ]


def matching_rank(target_params: int, sizes: list[tuple[int, int]]) -> int:
    """The LoRA rank r ≥ 1 whose size r·Σ(d_in + d_out) is closest to ``target_params``."""
    per_rank = sum(i + o for i, o in sizes)
    return max(1, round(target_params / per_rank))


def meta_model(init_dir: str) -> torch.nn.Module:
    """The architecture of the export at ``init_dir`` on the meta device (no weights read)."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(init_dir))


def adapter_shape(model: torch.nn.Module, adapter: dict[str, Any]) -> tuple[int, list[tuple[int, int]]]:
    """(trainable parameters of the MoE-LoRA ``adapter`` on ``model``, sizes of its target linears);
    ``model`` itself is left unchanged."""
    sizes = linear_sizes(model, list(adapter["target_modules"]))
    moe = inject_moe_lora(copy.deepcopy(model), **adapter)
    return sum(p.numel() for p in moe.parameters() if p.requires_grad), sizes


def equal_size_lora(model: torch.nn.Module, adapter: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """(peft ``LoraConfig`` kwargs of the LoRA as large as ``adapter`` on ``model``, the adapter's trainable size)."""
    moe_params, sizes = adapter_shape(model, adapter)
    rank = matching_rank(moe_params, sizes)
    alpha = adapter["alpha"] / adapter["rank"] * rank
    return {
        "r": rank,
        "lora_alpha": alpha,
        "target_modules": list(adapter["target_modules"]),
        "lora_dropout": 0.0,
    }, moe_params


class LoRABaselineModule(PerTaskValLoss, CausalLMModule):
    """A frozen causal LM with a peft LoRA on ``target_modules``; per-task validation NLL as stage ``mole``."""

    stage_name = "lora_baseline"

    def __init__(self, *args: Any, lora: dict[str, Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lora_cfg = dict(lora)

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        peft_model = get_peft_model(lm, LoraConfig(**self.lora_cfg))
        peft_model.print_trainable_parameters()
        return peft_model.get_base_model()  # the HF model, its linears now peft LoRA layers, the rest frozen


@register_stage
class LoRABaseline(MoLE):
    name = "lora_baseline"
    config_key = "mole"

    def check(self) -> None:
        super().check()
        if self.cfg.trainer.strategy == "fsdp":
            raise ConfigError("trainer.strategy: the peft LoRA baseline runs without FSDP (use trainer=cpu or ddp)")

    def module(self, init_dir: str) -> CausalLMModule:
        self.lora, self.matched = equal_size_lora(meta_model(init_dir), adapter_settings(self.cfg))
        return LoRABaselineModule(**module_settings(self.cfg, self.key(), init_dir), lora=self.lora)

    def plan_model(self, model: Any) -> Any:
        lora, _ = equal_size_lora(model, adapter_settings(self.cfg))
        return get_peft_model(model, LoraConfig(**lora)).get_base_model()

    def report(self, module: Any, val_metrics: dict[str, float], data: StageData, out: ReportSink) -> dict[str, Any]:
        result = {
            "baseline": {
                "kind": "peft_lora",
                "rank": self.lora["r"],
                "alpha": self.lora["lora_alpha"],
                "matched_adapter": adapter_settings(self.cfg),
                "matched_trainable": self.matched,
            }
        }
        if module.telemetry.val_task_loss:
            result["val_loss_by_task"] = module.telemetry.val_task_loss
        return result

    @classmethod
    def markdown(cls, result: dict[str, Any], run_dir: str) -> list[str]:
        b = result.get("baseline", {})
        return [
            "## Equal-size peft LoRA baseline",
            "",
            f"- rank {b.get('rank')}, alpha {b.get('alpha')}, matching {b.get('matched_trainable')} trainable "
            "parameters of the MoE-LoRA adapter",
        ]

    @classmethod
    def console(cls, result: dict[str, Any]) -> str:
        return f"peft LoRA r={result.get('baseline', {}).get('rank')}"
