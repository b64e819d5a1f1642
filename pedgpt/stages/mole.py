"""Stage 4: MoE-LoRA SFT on the frozen aligned model, with task-aware routing statistics.

Task ids are set on the adapter modules before each forward and cleared after the step (after the
backward, so activation-checkpoint recomputation sees them). Router statistics accumulate on device
inside the adapter and are read only at logging steps. Validation also measures the token-mean NLL per
task (``val/loss/<task>``), accumulated as tensors and reduced at epoch end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import MISSING

from pedgpt.adapters import (
    clear_task_ids,
    commit_router_stats,
    inject_moe_lora,
    router_aux_loss,
    router_stats,
    set_task_ids,
    set_token_mask,
    trainable_summary,
)
from pedgpt.adapters.heatmap import router_heatmap
from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import STAGE_RULES, Rule
from pedgpt.data import stage_data as sd
from pedgpt.data.schema import PEDIATRIC_TASKS, TASKS
from pedgpt.data.token_store import SPLITS, Encoding
from pedgpt.distributed.world import is_rank_zero, sum_over_ranks
from pedgpt.losses.lm import task_nll_sums
from pedgpt.stages.module import CausalLMModule, adapter_settings, module_settings
from pedgpt.stages.registry import ReportSink, Stage, StageConfig, StageData, register_stage
from pedgpt.stages.sft import instruction_encoding
from pedgpt.stages.steps import LossOutput, token_mask

TASK_ROUTERS = ("task", "token_task_aux")


@dataclass
class MoLEConfig(StageConfig):
    general_ratio: float = MISSING  # share of non-pediatric instructions mixed into the pediatric tasks
    packing: bool = MISSING  # must stay false: task ids are per sequence


class PerTaskValLoss:
    """Mixin for a :class:`CausalLMModule` whose batches carry ``task_ids``: token-mean validation NLL per task.

    Sums and counts accumulate on device during a validation epoch; at its end they are all-reduced over
    data-parallel ranks, logged as ``val/loss/<task>`` (tasks present in the validation set only) and kept
    in ``telemetry.val_task_loss`` ({task: loss}).
    """

    _task_nll: torch.Tensor | None = None

    def forward_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logp, n = super().forward_logps(batch)
        if self._task_nll is not None:  # only inside a validation epoch
            self._task_nll += task_nll_sums(logp, n, batch["task_ids"], len(TASKS))
        return logp, n

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._task_nll = torch.zeros(2, len(TASKS), dtype=torch.float32, device=self.device)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        sums, self._task_nll = sum_over_ranks(self._task_nll), None
        nll, count = sums.tolist()
        losses = {t: nll[i] / count[i] for i, t in enumerate(TASKS) if count[i] > 0}
        self.telemetry.val_task_loss = losses
        for t, v in losses.items():
            self.log(f"val/loss/{t}", v, on_epoch=True, sync_dist=False)


class MoLEModule(PerTaskValLoss, CausalLMModule):
    stage_name = "mole"

    def __init__(self, *args: Any, adapter: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adapter_cfg = dict(adapter)

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        lm = inject_moe_lora(lm, **self.adapter_cfg)
        if is_rank_zero():
            print(trainable_summary(lm))
        return lm

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str, normaliser: torch.Tensor) -> LossOutput:
        """Token-mean NLL plus the routers' auxiliary loss (a batch statistic: averaged over the window's
        micro-batches); routing sees the batch's task ids and real tokens only."""
        set_task_ids(self.lm, batch["task_ids"])
        set_token_mask(self.lm, token_mask(batch))
        out = super().compute_loss(batch, split, normaliser)
        commit_router_stats(self.lm)
        aux = router_aux_loss(self.lm)
        if aux is not None:
            out.metrics["loss/router_aux"] = aux.detach()
            out.loss = out.loss + aux / self.window_size
        return out

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        clear_task_ids(self.lm)
        if self.trainer.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            self._log_router("train")

    def on_validation_batch_end(self, *args: Any) -> None:
        clear_task_ids(self.lm)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        router_stats(self.lm, reset=True)  # drop training-step statistics

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.telemetry.val_router = self._log_router("val")

    def _log_router(self, split: str) -> dict[str, Any]:
        stats = router_stats(self.lm, reset=True)
        gate, counts = stats["gate_mean"].float(), stats["task_counts"].float()
        seen = counts > 0
        out: dict[str, Any] = {
            "entropy": float(stats["entropy"]),
            "gate_mean": {t: gate[i].tolist() for i, t in enumerate(TASKS) if seen[i]},
        }
        if seen.any():
            load = (gate[seen] * counts[seen, None]).sum(0) / counts[seen].sum()
            metrics = {f"{split}/router/load_e{j}": float(v) for j, v in enumerate(load)}
            metrics[f"{split}/router/entropy"] = out["entropy"]
            for i, t in enumerate(TASKS):
                if seen[i]:
                    metrics.update({f"{split}/router/{t}/e{j}": float(v) for j, v in enumerate(gate[i])})
            for lg in self.loggers:
                lg.log_metrics(metrics, step=self.trainer.global_step)
        return out


@register_stage
class MoLE(Stage):
    name = "mole"
    config_class = MoLEConfig
    corpus_parts = ("sft",)
    starts_from = "dfpo"
    rules = (*STAGE_RULES, Rule("general_ratio", low=0, high=1, high_open=True))

    def check(self) -> None:
        if self.cfg.adapter.name == "none":
            raise ConfigError(f"adapter: stage {self.name} needs an adapter (adapter=moe_lora)")
        if self.st.packing:
            raise ConfigError(f"{self.key()}.packing: must be false (task ids are per sequence)")

    def check_data(self, root: str) -> None:
        router = self.cfg.adapter.router
        if router in TASK_ROUTERS:
            sd.require_records(
                root,
                "sft",
                "train",
                f"adapter.router: {router} routes by task, but {{path}} holds no "
                f"instruction labelled with a task of {list(PEDIATRIC_TASKS)}",
                want=lambda rec: rec.get("task") in PEDIATRIC_TASKS,
            )

    def store_settings(self) -> dict[str, Any]:
        return {"general_ratio": float(self.st.general_ratio), "seed": int(self.cfg.seed)}

    def encoding(self, tokenizer: Any) -> Encoding:
        ratio, seed = float(self.st.general_ratio), int(self.cfg.seed)
        records = {s: sd.mole_instructions(sd.corpus_part(self.cfg.data, "sft", s), ratio, seed) for s in SPLITS}
        return instruction_encoding(self, records, tokenizer)

    def module(self, init_dir: str) -> CausalLMModule:
        return MoLEModule(**module_settings(self.cfg, self.key(), init_dir), adapter=adapter_settings(self.cfg))

    def plan_model(self, model: Any) -> Any:
        return inject_moe_lora(model, **adapter_settings(self.cfg))

    def report(self, module: Any, val_metrics: dict[str, float], data: StageData, out: ReportSink) -> dict[str, Any]:
        t = module.telemetry
        result: dict[str, Any] = {}
        if t.val_task_loss:
            result["val_loss_by_task"] = t.val_task_loss
        if t.val_router:
            result["router_weights"] = t.val_router["gate_mean"]
            result["router_entropy"] = t.val_router["entropy"]
            if out.writer and result["router_weights"]:
                path = router_heatmap(result["router_weights"], os.path.join(out.stage_dir, "router_heatmap.png"))
                result["router_heatmap"] = path
                for lg in out.loggers:
                    if hasattr(lg, "log_image"):
                        lg.log_image(key="val/router/heatmap", images=[path])
        return result

    @classmethod
    def markdown(cls, result: dict[str, Any], run_dir: str) -> list[str]:
        weights = result.get("router_weights")
        if not weights:
            return []
        n = max(len(v) for v in weights.values())
        lines = [
            "## MoE-LoRA: mean router weight per specific expert (validation)",
            "",
            "| task | " + " | ".join(f"e{j}" for j in range(n)) + " |",
            "|---" * (n + 1) + "|",
        ]
        lines += [f"| {t} | " + " | ".join(f"{x:.3f}" for x in w) + " |" for t, w in weights.items()]
        if result.get("router_heatmap"):
            lines += ["", f"![router heat-map]({os.path.relpath(result['router_heatmap'], run_dir)})"]
        return lines
