"""``python -m pedgpt.models.convert src=DIR out=DIR [to=baichuan2]``: convert a checkpoint directory.

Without ``to``: an official Baichuan2 download (remote-code layout) becomes pedgpt's native ``baichuan2`` layout;
other transformers models are copied unchanged. ``to=baichuan2``: a native Baichuan2 directory or pedgpt export
becomes the official layout. Errors: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from pedgpt.models.argparse_words import WordArgumentParser, fail
from pedgpt.models.baichuan2 import register
from pedgpt.models.baichuan2.convert import convert_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = WordArgumentParser(prog="python -m pedgpt.models.convert", description=__doc__.split("\n\n", 1)[1].strip())
    parser.add_argument("--src", required=True, help="model directory to convert")
    parser.add_argument("--out", required=True, help="new output directory (must not exist or be empty)")
    parser.add_argument(
        "--to",
        choices=["native", "baichuan2"],
        default=None,
        help="baichuan2: native -> official layout; unset: official -> native",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    register()
    try:
        convert_dir(args.src, args.out, args.to)
    except (ValueError, OSError) as err:
        fail(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
