"""``python -m pedgpt.train [+experiment=NAME] [key=value ...]`` — the PediatricsGPT training pipeline.

With no overrides: the four-stage demo (CPT → SFT → DFPO → MoE-LoRA) on a tiny model, on CPU. Stages from
other packages: ``PEDGPT_PLUGINS=my.module python -m pedgpt.train pipeline=[my_stage]``.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import pedgpt.stages  # noqa: F401  (registers the built-in stages and their schemas)
from pedgpt.common.errors import PedgptError
from pedgpt.config import CONF_DIR
from pedgpt.stages.registry import load_plugins
from pedgpt.training.run import train


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    code = train(cfg, hc.runtime.output_dir, multirun=hc.mode == RunMode.MULTIRUN)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    try:
        load_plugins()  # before Hydra composes: a plugin stage's schema must be in the ConfigStore
    except PedgptError as e:
        print(f"config error: {e}", file=sys.stderr)
        sys.exit(2)
    main()
