"""``python -m pedgpt.data.tokenize [+experiment=NAME] [key=value ...]`` — tokenize once, read everywhere.

Writes the token store of every stage of the configured pipeline under ``paths.cache_dir/tokens/`` (the training
config and overrides of ``python -m pedgpt.train``; one line per stage: its key, ``built`` or ``cached``, the
counts and the folder). Training then opens the stores memory-mapped; without this command the first training run
builds them. The work is :func:`pedgpt.training.tokenize.tokenize`.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import pedgpt.stages  # noqa: F401  (registers the built-in stages and their schemas)
from pedgpt.common.errors import PedgptError
from pedgpt.config import CONF_DIR
from pedgpt.stages.registry import load_plugins
from pedgpt.training.tokenize import tokenize


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    code = tokenize(cfg, HydraConfig.get().runtime.output_dir)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    try:
        load_plugins()
    except PedgptError as e:
        print(f"config error: {e}", file=sys.stderr)
        sys.exit(2)
    main()
