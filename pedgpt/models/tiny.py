"""``python -m pedgpt.models.tiny family=baichuan2_7b|baichuan2_13b|qwen2_5 out=DIR [seed=N]``: write a tiny random
checkpoint in the official download layout of that family (see :mod:`pedgpt.models.tiny_checkpoints`)."""

from __future__ import annotations

import argparse
import sys

from pedgpt.models.argparse_words import WordArgumentParser, fail
from pedgpt.models.tiny_checkpoints import FAMILIES, write_tiny


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = WordArgumentParser(prog="python -m pedgpt.models.tiny", description=__doc__)
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--out", required=True, help="new (or empty) output directory")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(write_tiny(args.family, args.out, args.seed))
    except (ValueError, OSError, ImportError) as err:
        fail(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
