"""The training and validation steps every stage module shares.

**One training step is one optimizer step over a window** of ``trainer.accumulate_grad_batches`` micro-batches
(:mod:`pedgpt.data.datamodule` hands the window over as a list). The window's loss is normalised by the
window's global count of its units — label tokens for token-mean losses, preference pairs for DFPO — summed
over its micro-batches and over all data-parallel ranks, and that count is known before the first forward
(it is read off the labels). Each micro-batch back-propagates ``Σ loss / (global count ÷ world size)``; the
gradients DDP/FSDP average over ranks then equal, exactly, those of one batch holding the whole window.
Gradient all-reduce / reduce-scatter runs once per window (``no_sync`` / ``set_requires_gradient_sync``).
Auxiliary losses that are batch statistics (router losses) are averaged over the window's micro-batches.

After the window: one combined check of the loss and the gradient norm, agreed by all ranks; a non-finite
step is skipped — it counts neither toward ``max_steps`` nor the LR schedule — and more than
``max_nonfinite_in_a_row`` stop the run. Validation accumulates Σ loss and the unit count over the whole
epoch and all ranks, so ``val/loss`` is the global token (or pair) mean, as ``val/loss/<task>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.common.errors import NonFiniteError
from pedgpt.distributed.world import sum_over_ranks, world_size


@dataclass
class LossOutput:
    """What ``compute_loss`` returns for one micro-batch.

    ``loss`` is what this rank back-propagates (already divided by the window's normaliser); ``total`` the
    detached local sum of the loss over its units (label tokens, or pairs) and ``units`` their local count;
    ``tokens`` the micro-batch's label tokens on this rank (throughput); ``metrics`` further ``<split>/<name>``
    scalars (means over the micro-batch).
    """

    loss: torch.Tensor
    total: torch.Tensor
    units: torch.Tensor
    tokens: torch.Tensor | None = None
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


def label_tokens(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Label tokens of a batch: positions whose next-token label is not ignored."""
    return (batch["labels"][:, 1:] != IGNORE_INDEX).sum()


def token_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(B, L) bool, True on real (non-pad) tokens: a padded batch's 2-D attention mask, or a packed batch's
    ``token_mask``."""
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return mask.bool()
    return batch.get("token_mask")


class WindowSteps:
    """Mixin for the stage LightningModule (manual optimisation): window training steps, the non-finite guard
    and epoch-global validation loss. The module provides ``compute_loss(batch, split, normaliser)``."""

    window_size: int = 1  # micro-batches in the current training window

    def loss_units(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The count a batch's loss is normalised by (label tokens; DFPO: pairs)."""
        return label_tokens(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str, normaliser: torch.Tensor) -> LossOutput:
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------------------
    def training_step(self, window: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor], batch_idx: int) -> Any:
        micro = window if isinstance(window, list) else [window]
        window_loss, tokens, metrics = self.accumulate(micro)
        self._optimizer_step(window_loss)
        telemetry = self.telemetry
        telemetry.train_loss, telemetry.step_tokens = window_loss, tokens
        self.log("train/loss", window_loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=1)
        for k, v in metrics.items():  # this rank's window means (no collective on the hot path)
            self.log(f"train/{k}", v, on_step=True, on_epoch=False, batch_size=1)
        return window_loss

    def accumulate(
        self, micro: list[dict[str, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Forward and backward every micro-batch of a window, gradients normalised by the window's global count.

        Returns the window's loss (the global mean, the same on every rank), this rank's label tokens, and this
        rank's unit-weighted means of the other metrics.
        """
        global_units = sum_over_ranks(torch.stack([self.loss_units(b) for b in micro]).sum().float())
        normaliser = global_units.clamp_min(1) / world_size()
        self.window_size = len(micro)
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        units = torch.zeros((), dtype=torch.float32, device=self.device)
        tokens = torch.zeros((), dtype=torch.long, device=self.device)
        sums: dict[str, torch.Tensor] = {}
        for i, b in enumerate(micro):
            with self._gradient_sync(i == len(micro) - 1):
                out = self.compute_loss(b, "train", normaliser)
                self.manual_backward(out.loss)
            total, units = total + out.total.float(), units + out.units.float()
            tokens = tokens + (out.tokens if out.tokens is not None else 0)
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() * out.units.float()
        window_loss = sum_over_ranks(total) / global_units.clamp_min(1)  # the global window's mean
        return window_loss, tokens, {k: v / units.clamp_min(1) for k, v in sums.items()}

    @contextlib.contextmanager
    def _gradient_sync(self, sync: bool) -> Iterator[None]:
        """Gradients are reduced over ranks only with the window's last backward."""
        if sync or world_size() == 1:
            yield
            return
        wrapped = self.trainer.model
        if isinstance(wrapped, DistributedDataParallel):
            with wrapped.no_sync():
                yield
            return
        toggle = getattr(self.net, "set_requires_gradient_sync", None)  # FSDP2
        if toggle is None:
            yield
            return
        toggle(False)
        try:
            yield
        finally:
            toggle(True)

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        """Check, clip and step (or skip and count) after the window's backward passes."""
        opt, sched = self.optimizers(), self.lr_schedulers()
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norm = self._total_norm(params)
        if self._all_finite(loss, norm):
            self._nonfinite_run = 0
            if self.gradient_clip_val:
                torch.nn.utils.clip_grads_with_norm_(params, self.gradient_clip_val, norm)
            opt.step()
            sched.step()
        else:
            self._skip_step()
        opt.zero_grad(set_to_none=True)

    @staticmethod
    def _total_norm(params: list[torch.Tensor]) -> torch.Tensor:
        if not params:
            return torch.zeros(())
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], error_if_nonfinite=False)
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def _all_finite(self, loss: torch.Tensor, norm: torch.Tensor) -> bool:
        flag = (torch.isfinite(norm.float()) & torch.isfinite(loss.detach().float())).to(torch.float32)
        if world_size() > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _skip_step(self) -> None:
        self.telemetry.nonfinite_skipped += 1
        self._nonfinite_run += 1
        self.print(
            f"non-finite loss or gradient after step {self.trainer.global_step}: step skipped "
            f"({self._nonfinite_run} in a row, {self.telemetry.nonfinite_skipped} in total)"
        )
        if self._nonfinite_run > self.max_nonfinite_in_a_row:
            raise NonFiniteError(
                f"{self._nonfinite_run} non-finite steps in a row (max_nonfinite_in_a_row="
                f"{self.max_nonfinite_in_a_row}); stopping. Lower the learning rate or check the data, then resume "
                "with ckpt_path=last (checkpoints are verified against their checksums before use)"
            )

    # -- validation ----------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()  # type: ignore[misc]
        self._val_sums = torch.zeros(2, dtype=torch.float32, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        units = self.loss_units(batch).float()
        out = self.compute_loss(batch, "val", units.clamp_min(1))
        self._val_sums += torch.stack([out.total.float(), out.units.float()])
        rows = batch["input_ids"].shape[0]
        for k, v in out.metrics.items():
            self.log(f"val/{k}", v, on_step=False, on_epoch=True, batch_size=rows, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # type: ignore[misc]
        total, units = sum_over_ranks(self._val_sums).tolist()
        self.log("val/loss", total / max(units, 1.0), prog_bar=True, on_epoch=True, sync_dist=False)
