"""``python -m pedgpt.data.build source_dir=DIR out_dir=DIR [key=value ...]`` — build a PedCorpus.

Configured by ``conf/build.yaml``; the builder itself is :func:`pedgpt.data.corpus.build.build`. The build
is written to a temporary directory next to ``out_dir`` and swapped into place when complete, with Hydra's
``.hydra/config.yaml`` and ``overrides.yaml`` inside it; Hydra itself writes nothing (``hydra.run.dir: .``,
no output subdirectory, logging to stdout). Bad input exits with status 1 and one line ``error: …``.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from pedgpt.config import CONF_DIR
from pedgpt.data.corpus.build import build
from pedgpt.data.corpus.sources import SourceError


def hydra_files(cfg: DictConfig) -> dict[str, str]:
    """``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` of this run, as Hydra would have written them."""
    files = {".hydra/config.yaml": OmegaConf.to_yaml(cfg)}
    if HydraConfig.initialized():
        files[".hydra/overrides.yaml"] = OmegaConf.to_yaml(list(HydraConfig.get().overrides.task))
    return files


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="build")
def main(cfg: DictConfig) -> None:
    try:
        stats = build(cfg, extra_files=hydra_files(cfg))
    except (SourceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"PedCorpus written to {cfg.out_dir}: tasks={stats['tasks']} files={stats['files']}")


if __name__ == "__main__":
    main()
