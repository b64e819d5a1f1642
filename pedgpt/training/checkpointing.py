"""Step-numbered, atomic checkpoints with a ``last`` pointer, and the state Lightning does not save.

A checkpoint is written under a temporary name in the same directory, fsynced, then ``os.replace``d to
``step=N.ckpt`` (a file, or a directory for sharded checkpoints); the ``last`` pointer is replaced the same
way. A process killed mid-write therefore leaves the previous checkpoint intact and loadable. RNG states
(python, numpy, torch) are stored as plain lists and tensors so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import zipfile
from typing import Any

import lightning as L
import torch

from pedgpt.common.errors import CheckpointError
from pedgpt.common.files import atomic_write_text, fsync_path

log = logging.getLogger(__name__)
LAST = "last"
STEP_RE = re.compile(r"^step=(\d+)\.ckpt$")


# -- files ---------------------------------------------------------------------------------------------
def step_checkpoints(dirpath: str) -> list[tuple[int, str]]:
    """Complete checkpoints in ``dirpath`` as (step, path), oldest first."""
    if not os.path.isdir(dirpath):
        return []
    out = [(int(m.group(1)), os.path.join(dirpath, f)) for f in os.listdir(dirpath) if (m := STEP_RE.match(f))]
    return sorted(out)


def find_last_checkpoint(dirpath: str) -> str | None:
    """The ``last`` pointer's target if it exists, else the highest-step complete checkpoint."""
    pointer = os.path.join(dirpath, LAST)
    if os.path.exists(pointer):
        target = os.path.join(dirpath, open(pointer).read().strip())
        if os.path.exists(target):
            return target
    ckpts = step_checkpoints(dirpath)
    return ckpts[-1][1] if ckpts else None


def checkpoint_step(path: str) -> int:
    m = STEP_RE.match(os.path.basename(os.path.normpath(path)))
    if not m:
        raise CheckpointError(f"{path}: not a step-numbered checkpoint (step=N.ckpt)")
    return int(m.group(1))


def verify_checkpoint(path: str) -> None:
    """Fail with one clear line when a checkpoint file is truncated or corrupted."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, ".metadata")):
            raise CheckpointError(f"{path}: incomplete sharded checkpoint (no .metadata)")
        return
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive whose directory is at the very end
        raise CheckpointError(f"{path}: corrupted or truncated checkpoint (not a complete torch.save archive)")
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(
            f"{path}: corrupted or truncated checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        ) from None


class PeriodicCheckpoint(L.Callback):
    """Every ``every_n_steps`` optimizer steps: ``checkpoints/step=N.ckpt``, keep the last ``keep_last``."""

    def __init__(self, dirpath: str, every_n_steps: int, keep_last: int = 3):
        self.dirpath, self.every, self.keep_last = dirpath, every_n_steps, max(1, keep_last)
        self._last_saved = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.every > 0 and step > 0 and step % self.every == 0 and step != self._last_saved:
            self.save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and trainer.global_step != self._last_saved:
            log.warning("interrupted at step %d: saving a checkpoint before exiting", trainer.global_step)
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> str:
        step = trainer.global_step
        name = f"step={step}.ckpt"
        final = os.path.join(self.dirpath, name)
        tmp = os.path.join(self.dirpath, f".tmp-{name}")
        if trainer.is_global_zero:
            os.makedirs(self.dirpath, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True) if os.path.isdir(tmp) else (os.path.exists(tmp) and os.remove(tmp))
        trainer.strategy.barrier()
        try:
            trainer.save_checkpoint(tmp, weights_only=False)
        except BaseException:
            if trainer.is_global_zero:  # e.g. a full disk: drop the partial file, keep the previous checkpoint
                shutil.rmtree(tmp, ignore_errors=True) if os.path.isdir(tmp) else (
                    os.path.exists(tmp) and os.remove(tmp)
                )
            raise
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            fsync_path(tmp)
            os.replace(tmp, final)
            fsync_path(self.dirpath)
            atomic_write_text(os.path.join(self.dirpath, LAST), name)
            for _, old in step_checkpoints(self.dirpath)[: -self.keep_last]:
                shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.remove(old)
        trainer.strategy.barrier()
        self._last_saved = step
        return final
