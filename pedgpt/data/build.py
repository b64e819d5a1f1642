"""``python -m pedgpt.data.build source_dir=DIR out_dir=DIR [key=value ...]`` — build a PedCorpus.

Configured by ``conf/build.yaml``; the builder itself is :func:`pedgpt.data.corpus.build.build`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from pedgpt.config import CONF_DIR
from pedgpt.data.corpus.build import build
from pedgpt.data.corpus.sources import SourceError


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="build")
def main(cfg: DictConfig) -> None:
    try:
        stats = build(cfg)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"PedCorpus written to {cfg.out_dir}: tasks={stats['tasks']} files={stats['files']}")


if __name__ == "__main__":
    main()
