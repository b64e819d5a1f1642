"""``python -m pedgpt.models.tiny family=baichuan2_7b|baichuan2_13b|qwen2_5 out=DIR [seed=N]`` — write a tiny
random checkpoint in the official download layout of that family (:mod:`pedgpt.models.tiny_checkpoints`), to
smoke-test a setup before the real weights arrive."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pedgpt.common.errors import UsageError
from pedgpt.config.cli import ToolParser
from pedgpt.models.tiny_checkpoints import FAMILIES, write_tiny


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.models.tiny", __doc__)
    p.option("family", required=True, choices=FAMILIES)
    p.option("out", required=True, help="new (or empty) output directory")
    p.option("seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        print(write_tiny(args.family, args.out, args.seed))
    except (UsageError, ValueError, OSError, ImportError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
