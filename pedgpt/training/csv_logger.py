"""A CSV logger that survives kill -9 and resumes without losing or duplicating rows.

Lightning's ``CSVLogger`` buffers 100 steps by default and deletes ``metrics.csv`` when its directory is
reused. This one flushes every ``flush_every_n_steps`` logging calls (each flush appends and fsyncs), and
when resuming from a checkpoint at step ``resume_step`` it keeps the existing rows before that step and
drops the later ones (the resumed run logs them again, with identical values). Lightning logs the metrics
of the batch that brings ``global_step`` to N at step N - 1, so a checkpoint at global step N holds
exactly the batches whose rows have ``step < N``.
"""

from __future__ import annotations

import csv
import os
from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from pedgpt.distributed.world import is_rank_zero

METRICS_FILE = "metrics.csv"


def _fsync_write_rows(path: str, fieldnames: list[str], rows: list[dict], mode: str, header: bool) -> None:
    with open(path, mode, newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames)
        if header:
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


class ResumableCSVLogger(Logger):
    def __init__(self, log_dir: str, flush_every_n_steps: int = 1, resume_step: int | None = None):
        super().__init__()
        self._log_dir = log_dir
        self.flush_every = max(1, flush_every_n_steps)
        self.path = os.path.join(log_dir, METRICS_FILE)
        self.keys: list[str] = []
        self.buffer: list[dict[str, Any]] = []
        os.makedirs(log_dir, exist_ok=True)
        if not is_rank_zero():
            return  # rank 0 owns the file
        if resume_step is not None and os.path.exists(self.path):
            self._truncate_after(resume_step)
        elif os.path.exists(self.path):
            os.remove(self.path)  # a fresh (non-resumed) run in this directory starts a fresh log

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            self.keys = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") not in (None, "") and int(r["step"]) < step]
        tmp = self.path + ".tmp"
        _fsync_write_rows(tmp, self.keys, rows, "w", header=True)
        os.replace(tmp, self.path)

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def log_dir(self) -> str:
        return self._log_dir

    @property
    def save_dir(self) -> str:
        return self._log_dir

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config lives in the run directory's .hydra/config.yaml

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        row["step"] = step if step is not None else len(self.buffer)
        self.buffer.append(row)
        if len(self.buffer) >= self.flush_every:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self.buffer:
            return
        new = sorted(set().union(*self.buffer) - set(self.keys))
        exists = os.path.exists(self.path)
        if new:
            self.keys = sorted(self.keys + new)
            old: list[dict] = []
            if exists:
                with open(self.path, newline="") as f:
                    old = list(csv.DictReader(f))
            tmp = self.path + ".tmp"
            _fsync_write_rows(tmp, self.keys, old + self.buffer, "w", header=True)
            os.replace(tmp, self.path)
        else:
            _fsync_write_rows(self.path, self.keys, self.buffer, "a", header=not exists)
        self.buffer = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
