"""Stage 4: MoE-LoRA SFT on the frozen aligned model, with task-aware routing statistics.

Task ids are set on the adapter modules before each forward and cleared after the step (after the
backward, so activation-checkpoint recomputation sees them). Router statistics accumulate on device
inside the adapter and are read only at logging steps. Validation also measures the token-mean NLL per
task (``val/loss/<task>``, kept in ``val_task_loss``), accumulated as tensors and reduced at epoch end.
"""
from __future__ import annotations

from typing import Any

import torch

from pedgpt.data.schema import TASKS
from pedgpt.stages.base import CausalLMStage, world_size


def task_nll_sums(logp_sum: torch.Tensor, n_tokens: torch.Tensor, task_ids: torch.Tensor,
                  num_tasks: int) -> torch.Tensor:
    """Summed NLL and label-token count per task: logp_sum, n_tokens, task_ids (B,) → (2, num_tasks) fp32."""
    out = torch.zeros(2, num_tasks, dtype=torch.float32, device=logp_sum.device)
    out[0].index_add_(0, task_ids, -logp_sum.detach().float())
    out[1].index_add_(0, task_ids, n_tokens.float())
    return out


class PerTaskValLoss:
    """Mixin for a :class:`CausalLMStage` whose batches carry ``task_ids``: token-mean validation NLL per task.

    Sums and counts accumulate on device during a validation epoch; at its end they are all-reduced over
    data-parallel ranks, logged as ``val/loss/<task>`` (tasks present in the validation set only) and kept
    in ``val_task_loss`` ({task: loss}).
    """

    val_task_loss: dict[str, float] | None = None
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
        sums, self._task_nll = self._task_nll, None
        if world_size() > 1:
            torch.distributed.all_reduce(sums)
        nll, count = sums.tolist()
        self.val_task_loss = {t: nll[i] / count[i] for i, t in enumerate(TASKS) if count[i] > 0}
        for t, v in self.val_task_loss.items():
            self.log(f"val/loss/{t}", v, on_epoch=True, sync_dist=False)


class MoLEStage(PerTaskValLoss, CausalLMStage):
    stage_name = "mole"

    def __init__(self, *args: Any, adapter: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adapter_cfg = dict(adapter)
        self.val_router: dict[str, Any] | None = None

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        from pedgpt.adapters import inject_moe_lora, trainable_summary
        lm = inject_moe_lora(lm, **self.adapter_cfg)
        self.print(trainable_summary(lm))
        return lm

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str):
        from pedgpt.adapters import router_aux_loss, set_task_ids
        set_task_ids(self.lm, batch["task_ids"])
        loss, metrics = super().compute_loss(batch, split)
        aux = router_aux_loss(self.lm)
        if aux is not None:
            metrics["loss/router_aux"] = aux.detach()
            loss = loss + aux
        return loss, metrics

    def _clear(self) -> None:
        from pedgpt.adapters import clear_task_ids
        clear_task_ids(self.lm)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._clear()
        if self.trainer.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            self._log_router("train")

    def on_validation_batch_end(self, *args: Any) -> None:
        self._clear()

    def on_validation_epoch_start(self) -> None:
        from pedgpt.adapters import router_stats
        super().on_validation_epoch_start()
        router_stats(self.lm, reset=True)  # drop training-step statistics

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.val_router = self._log_router("val")

    def _log_router(self, split: str) -> dict[str, Any]:
        from pedgpt.adapters import router_stats
        stats = router_stats(self.lm, reset=True)
        gate, counts = stats["gate_mean"].float(), stats["task_counts"].float()
        seen = counts > 0
        out: dict[str, Any] = {"entropy": float(stats["entropy"]),
                               "gate_mean": {t: gate[i].tolist() for i, t in enumerate(TASKS) if seen[i]}}
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
