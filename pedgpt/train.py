"""``python -m pedgpt.train [+experiment=NAME] [key=value ...]`` — the PediatricsGPT training pipeline.

With no overrides: the four-stage demo (CPT → SFT → DFPO → MoE-LoRA) on a tiny model, on CPU.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "transformers.modeling_utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # the data position is restored by ExamplesDataModule.state_dict (exact), not by a stateful dataloader
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from pedgpt.config.validate import ConfigError, validate

    quiet_libraries()
    try:
        validate(cfg)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        sys.exit(2)
    if cfg.dry_run:
        from pedgpt.planner import plan
        print(json.dumps(plan(cfg)), flush=True)
        return
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from pedgpt.checkpointing import CheckpointError
    from pedgpt.models.build import ModelPathError
    from pedgpt.pipeline import run_pipeline
    from pedgpt.stages.base import NonFiniteError

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        run_pipeline(cfg, run_dir)
    except (ModelPathError, FileNotFoundError, CheckpointError, NonFiniteError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, SIGTERMException):
        print(f"interrupted: a checkpoint was saved; resume with hydra.run.dir={run_dir} ckpt_path=last", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
