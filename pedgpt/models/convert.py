"""``python -m pedgpt.models.convert src=DIR out=DIR [to=baichuan2]`` — convert a checkpoint directory.

Without ``to``: an official Baichuan2 download (remote-code layout, ``.bin`` shards, ``tokenizer.model``) becomes
pedgpt's native ``baichuan2`` layout; other transformers models are copied unchanged. ``to=baichuan2``: a native
Baichuan2 directory or a pedgpt export becomes the official layout again (``W_pack``, ``NormHead``, the official
config keys), for tools that know Baichuan2. Errors: one line on stderr, exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pedgpt.common.errors import UsageError
from pedgpt.config.cli import ToolParser
from pedgpt.models.baichuan2.convert import convert_dir


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.models.convert", __doc__)
    p.option("src", required=True, help="model directory to convert")
    p.option("out", required=True, help="new output directory (must not exist or be empty)")
    p.option("to", choices=("native", "baichuan2"), help="baichuan2: native -> official layout; unset: -> native")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        convert_dir(args.src, args.out, args.to)
    except (UsageError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
