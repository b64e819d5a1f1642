"""``python -m pedgpt.evaluate model_dir=DIR [adapter_dir=DIR] [suites=[medkqa,evidiag,...]] [data_root=DIR|null]``

Scores a model export on evaluation suites and writes ``predictions.jsonl``, ``metrics.json``, ``report.md``
and PNG charts to the run directory (see :mod:`pedgpt.evaluation.run`; settings: ``conf/evaluate.yaml``).
"""

from __future__ import annotations

import json
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pedgpt.common.errors import PedgptError
from pedgpt.common.logs import quiet_libraries
from pedgpt.config import CONF_DIR
from pedgpt.evaluation.run import run_evaluation


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    out_dir = cfg.out_dir or HydraConfig.get().runtime.output_dir
    try:
        summary = run_evaluation(cfg, out_dir)
    except (PedgptError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"[evaluate] wrote {out_dir}/report.md", file=sys.stderr)
    print(
        json.dumps(
            {s: {k: v for k, v in m.items() if isinstance(v, (int, float))} for s, m in summary["suites"].items()},
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
