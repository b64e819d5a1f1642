"""Small Lightning callbacks: loss history for the report, and throughput/memory logging."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch


class LossHistory(L.Callback):
    """Keeps ``train/loss`` at logging steps (one host sync per logging step, none otherwise)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) == 0 or step == trainer.max_steps:
            loss = pl_module.telemetry.train_loss  # the global (all-rank) value
            if loss is None:
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.steps.append(step)
            self.losses.append(float(loss.detach()))

    def first_last(self, frac: float = 0.1) -> tuple[float, float]:
        """Means over the first and the last ``frac`` of logged steps (at least one step each)."""
        n = len(self.losses)
        if n == 0:
            return float("nan"), float("nan")
        k = max(1, int(round(n * frac)))
        return sum(self.losses[:k]) / k, sum(self.losses[-k:]) / k


#: dense bf16 peak FLOP/s by GPU name fragment (vendor datasheets), for MFU
PEAK_BF16_FLOPS = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in device_name), None)


class Throughput(L.Callback):
    """Logs tokens/s (non-pad), label tokens/s, samples/s, step time and peak memory at logging steps, and MFU on
    CUDA (``telemetry.flops_per_token`` × tokens/s ÷ the GPU's dense bf16 peak; see
    :func:`pedgpt.models.flops.flops_per_token`)."""

    def __init__(self, peak_flops: float | None = None) -> None:
        self.peak_flops = peak_flops
        self._t0 = 0.0
        self._tokens = 0
        self._samples = 0
        self._steps = 0
        self._seen = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.peak_flops is None and pl_module.device.type == "cuda":
            self.peak_flops = peak_flops(torch.cuda.get_device_name(pl_module.device))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._steps == 0:
            self._t0 = time.perf_counter()
        for micro in batch if isinstance(batch, list) else [batch]:  # a window of micro-batches
            self._samples += int(micro["input_ids"].shape[0])
            mask = micro.get("attention_mask")
            self._seen += int(micro["input_ids"].numel()) if mask is None or mask.dim() != 2 else int(mask.sum())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._steps += 1
        tokens = pl_module.telemetry.step_tokens
        if tokens is not None:
            self._tokens += tokens  # stays a device tensor until a logging step
        if trainer.global_step % max(1, trainer.log_every_n_steps) != 0:
            return
        dt = max(1e-9, time.perf_counter() - self._t0)
        tok = float(self._tokens) if torch.is_tensor(self._tokens) else float(self._tokens)
        metrics = {
            "train/tokens_per_s": self._seen / dt,
            "train/label_tokens_per_s": tok / dt,
            "train/samples_per_s": self._samples / dt,
            "train/step_time": dt / self._steps,
        }
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            metrics["train/peak_mem_gb"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
            fpt = pl_module.telemetry.flops_per_token
            if self.peak_flops and fpt:
                # tokens here are this rank's label tokens; FLOPs are spent on all non-pad tokens of the batch
                metrics["train/mfu"] = fpt * self._seen / dt / self.peak_flops
        for lg in trainer.loggers:  # the step Lightning logs this batch's loss at
            lg.log_metrics(metrics, step=max(0, trainer.global_step - 1))
        self._t0, self._tokens, self._samples, self._steps, self._seen = time.perf_counter(), 0, 0, 0, 0
