"""Identity of a Hydra sweep: a fresh id per invocation, and the overrides a sweep varies.

``${pedgpt.sweep_id:}`` (used in ``hydra.sweep.dir``) is created once per sweep and kept in ``$PEDGPT_SWEEP_ID``
so that every process of the sweep — the jobs Hydra runs, and the rank processes a launcher starts with the same
environment — resolves the same directory; torchrun's and SLURM's job ids serve when present, so ranks started
independently agree too. Re-running a sweep therefore gets new job folders and a new W&B group.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Sequence

from omegaconf import OmegaConf

SWEEP_ID_ENV = "PEDGPT_SWEEP_ID"
#: ids that all processes of one launch share
SHARED_IDS = ("TORCHELASTIC_RUN_ID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID")


def sweep_id() -> str:
    """This sweep's id: ``$PEDGPT_SWEEP_ID``, a launcher's shared job id, or a new timestamp (then exported)."""
    if os.environ.get(SWEEP_ID_ENV):
        return os.environ[SWEEP_ID_ENV]
    shared = next((os.environ[k] for k in SHARED_IDS if os.environ.get(k) not in (None, "", "none")), None)
    value = shared or time.strftime("%Y-%m-%d_%H-%M-%S-") + secrets.token_hex(2)
    os.environ[SWEEP_ID_ENV] = value
    return value


def swept_keys(argv: Sequence[str]) -> list[str]:
    """The config keys a multirun command line sweeps (``key=a,b``, ``key=range(...)``, ``choice(...)``)."""
    keys = []
    for word in argv:
        key, eq, value = word.partition("=")
        if not eq or key.startswith(("hydra.", "-")) or value.startswith(("[", "{", "'", '"')):
            continue
        if "," in value or value.startswith(("range(", "choice(", "glob(", "interval(")):
            keys.append(key.lstrip("+~"))
    return keys


def swept_overrides(task_overrides: Sequence[str], argv: Sequence[str] | None = None) -> list[str]:
    """This job's ``key=value`` for every key the sweep varies (its name and tags say which job it is)."""
    keys = set(swept_keys(sys.argv[1:] if argv is None else argv))
    return [o.lstrip("+~") for o in task_overrides if o.partition("=")[0].lstrip("+~") in keys]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("pedgpt.sweep_id"):
        OmegaConf.register_new_resolver("pedgpt.sweep_id", sweep_id)
