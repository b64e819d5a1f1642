"""Stage 4: MoE-LoRA SFT on the frozen aligned model, with task-aware routing statistics.

Task ids are set on the adapter modules before each forward and cleared after the step (after the
backward, so activation-checkpoint recomputation sees them). Router statistics accumulate on device
inside the adapter and are read only at logging steps.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch

from pedgpt.data.schema import TASKS
from pedgpt.stages.base import CausalLMStage


class MoLEStage(CausalLMStage):
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
        router_stats(self.lm, reset=True)  # drop training-step statistics

    def on_validation_epoch_end(self) -> None:
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

    def export(self, out_dir: str, tokenizer: Any, writer: bool = True) -> None:
        """Adapter export: adapter tensors + config, the tokenizer, and a pointer to the frozen base.

        Every rank gathers the (possibly sharded) adapter tensors; only ``writer`` keeps the files.
        """
        import tempfile

        from pedgpt.adapters import save_adapter
        if not writer:
            with tempfile.TemporaryDirectory() as scratch:
                save_adapter(self.lm, scratch)
            return
        os.makedirs(out_dir, exist_ok=True)
        save_adapter(self.lm, out_dir)
        tokenizer.save_pretrained(out_dir)
        with open(os.path.join(out_dir, "pedgpt_export.json"), "w") as f:
            json.dump({"type": "moe_lora_adapter", "base_model": os.path.abspath(self.init_dir)}, f, indent=1)
