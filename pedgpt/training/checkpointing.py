"""Step-numbered, atomic, self-verifying checkpoints with a ``last`` pointer.

A checkpoint is written under a temporary name in the same directory, fsynced, then ``os.replace``d to
``step=N.ckpt`` (a file, or a directory for sharded checkpoints); the ``last`` pointer is replaced the same
way. A process killed mid-write therefore leaves the previous checkpoint intact and loadable. RNG states
(python, numpy, torch) are stored as plain lists and tensors so checkpoints load with ``weights_only=True``.

Each checkpoint carries the sha256 of its payload — ``step=N.ckpt.sha256.json`` beside a file, ``checksums.json``
inside a sharded directory (every rank hashes the shards it wrote) — written before the checkpoint is renamed into
place. :func:`verify_checkpoint` checks it before a resume or an export; a mismatch is one line naming the file,
and ``ckpt_path=last`` falls back to the newest checkpoint that verifies (and says so).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zipfile
from typing import Any

import lightning as L
import torch

from pedgpt.common.errors import CheckpointError
from pedgpt.common.files import atomic_write_text, file_sha256, fsync_path

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


SIDECAR = ".sha256.json"
CHECKSUMS = "checksums.json"


def sidecar_of(path: str) -> str:
    return path + SIDECAR


def _expected_checksums(path: str) -> dict[str, dict[str, Any]] | None:
    """{file: {bytes, sha256}} recorded for a checkpoint (relative names inside a sharded one), or None."""
    record = os.path.join(path, CHECKSUMS) if os.path.isdir(path) else sidecar_of(path)
    if not os.path.exists(record):
        return None
    try:
        with open(record) as f:
            data = json.load(f)
        return dict(data["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{record}: unreadable checksum record; the checkpoint cannot be verified") from None


def _check_payload(path: str, expected: dict[str, dict[str, Any]]) -> None:
    for name, want in sorted(expected.items()):
        f = os.path.join(path, name) if os.path.isdir(path) else path
        if not os.path.exists(f):
            raise CheckpointError(f"{f}: missing from the checkpoint (listed in its checksums)")
        size = os.path.getsize(f)
        if size != want["bytes"]:
            raise CheckpointError(f"{f}: {size} bytes, its checksum record says {want['bytes']} (truncated or changed)")
        if file_sha256(f) != want["sha256"]:
            raise CheckpointError(f"{f}: sha256 differs from its checksum record (the checkpoint is damaged)")


def verify_checkpoint(path: str) -> None:
    """Fail with one clear line when a checkpoint is truncated, corrupted or incomplete: its payload against the
    recorded sha256 (checkpoints written before checksums existed: their structure only)."""
    expected = _expected_checksums(path)
    if expected is not None:
        _check_payload(path, expected)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, ".metadata")):
            raise CheckpointError(f"{path}: incomplete sharded checkpoint (no .metadata)")
        return
    if expected is not None:
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
        sums = self._checksums(trainer, tmp)
        if trainer.is_global_zero:
            fsync_path(tmp)
            record = os.path.join(tmp, CHECKSUMS) if os.path.isdir(tmp) else sidecar_of(final)
            atomic_write_text(record, json.dumps({"files": sums}, indent=1, sort_keys=True))
            os.replace(tmp, final)
            fsync_path(self.dirpath)
            atomic_write_text(os.path.join(self.dirpath, LAST), name)
            for _, old in step_checkpoints(self.dirpath)[: -self.keep_last]:
                shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.remove(old)
                if os.path.exists(sidecar_of(old)):
                    os.remove(sidecar_of(old))
        trainer.strategy.barrier()
        self._last_saved = step
        return final

    @staticmethod
    def _checksums(trainer: L.Trainer, tmp: str) -> dict[str, dict[str, Any]]:
        """{file: {bytes, sha256}} of a just-written checkpoint; in a sharded one each rank hashes its own shard
        files (``__<rank>_*``) and rank 0 the shared ones, gathered to every rank."""
        if not os.path.isdir(tmp):
            return {"": {"bytes": os.path.getsize(tmp), "sha256": file_sha256(tmp)}} if trainer.is_global_zero else {}
        rank = trainer.global_rank
        mine = {}
        for name in sorted(os.listdir(tmp)):
            own = name.startswith(f"__{rank}_")
            shared = not name.startswith("__") and trainer.is_global_zero
            if own or shared:
                path = os.path.join(tmp, name)
                mine[name] = {"bytes": os.path.getsize(path), "sha256": file_sha256(path)}
        if trainer.world_size == 1:
            return mine
        parts: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(parts, mine)
        return {k: v for part in parts for k, v in part.items()}
