"""``python -m pedgpt.export ckpt=PATH out=DIR [merge_task=TASK]`` — an HF export from any saved checkpoint.

``ckpt`` is a single-file Lightning checkpoint (``step=N.ckpt``) or a sharded (distributed checkpoint)
directory written under FSDP; see :mod:`pedgpt.training.checkpoint_export`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pedgpt.common.errors import PedgptError
from pedgpt.config.cli import ToolParser
from pedgpt.data.schema import TASKS
from pedgpt.training.checkpoint_export import export_checkpoint


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.export", __doc__)
    p.option("ckpt", required=True, help="a step=N.ckpt file or a sharded checkpoint directory")
    p.option("out", required=True, help="the export directory to write")
    p.option("merge_task", choices=TASKS, help="merge a task-router adapter into plain weights for this task")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        out = export_checkpoint(args.ckpt, args.out, args.merge_task)
    except (PedgptError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
