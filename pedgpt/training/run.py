"""One training command, start to finish: validate the config, then plan (``dry_run``) or run the pipeline.

Errors the user can fix become one line on stderr and exit status 2; an interrupt saves a checkpoint and
exits 130 with the command that resumes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from pedgpt.common.errors import PedgptError
from pedgpt.common.logs import quiet_libraries
from pedgpt.training.pipeline import run_pipeline
from pedgpt.training.planner import plan
from pedgpt.training.validate import validate


def train(cfg: DictConfig, run_dir: str, multirun: bool = False) -> int:
    """Run the configured pipeline (or its dry-run plan) in ``run_dir``; returns the exit status."""
    quiet_libraries()
    try:
        cfg = validate(cfg, multirun)
    except PedgptError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if cfg.dry_run:
        print(json.dumps(plan(cfg)), flush=True)
        return 0
    previous = signal.signal(signal.SIGINT, _interrupt_as_sigterm)  # Ctrl-C: checkpoint, hint, exit 130
    try:
        run_pipeline(cfg, run_dir)
    except (PedgptError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SIGTERMException):
        print(
            f"interrupted: a checkpoint was saved; resume with hydra.run.dir={run_dir} ckpt_path=last", file=sys.stderr
        )
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def _interrupt_as_sigterm(signum: int, frame: Any) -> None:
    """Ctrl-C behaves as SIGTERM: Lightning stops at the next step boundary, a checkpoint is saved, and the command
    exits 130 with the line that resumes (Lightning's own Ctrl-C handling exits 1 without one)."""
    os.kill(os.getpid(), signal.SIGTERM)
