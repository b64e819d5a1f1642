"""``python -m pedgpt.score FILE [--tokenizer jieba|char] [--convention paper|sacrebleu] [--bootstrap N]
[--empty zero|skip_rouge] [--seed S] [--workers W]`` — score predictions against references in the paper's
Chinese metric convention (``key=value`` spellings work too: ``tokenizer=char``).

Each line of FILE is an object with string ``prediction`` and ``reference`` and optionally ``task`` and
``department`` (string or null). A table goes to stderr; the LAST stdout line is one JSON object:
``{rouge1 … distinct2[, sacrebleu], n, [by_task], [by_department], [ci95], convention}``. A malformed line
prints ``FILE:LINE: reason`` and exits with status 2. Rows with an empty reference are excluded and
counted (``excluded.empty_reference``; a line on stderr says how many). The library:
:mod:`pedgpt.evaluation.scoring`.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Sequence

from pedgpt.common.errors import PedgptError, UsageError
from pedgpt.config.cli import ToolParser
from pedgpt.evaluation.scoring import build_report, print_table, read_pairs
from pedgpt.metrics import text


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.score", __doc__)
    p.add_argument("file", help="JSONL with prediction, reference and optional task, department")
    p.option("tokenizer", choices=text.TOKENIZERS, default="jieba")
    p.option(
        "convention",
        choices=("paper", "sacrebleu"),
        default="paper",
        help="sacrebleu adds corpus sacreBLEU (tokenize=zh) as `sacrebleu` to the paper's keys",
    )
    p.option(
        "bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="N bootstrap resamples for 95%% percentile intervals (0: none)",
    )
    p.option(
        "empty",
        choices=text.EMPTY_RULES,
        default="zero",
        help="zero: empty predictions score 0 everywhere; skip_rouge: the paper's code",
    )
    p.option("seed", type=int, default=0, help="bootstrap seed")
    p.option("workers", type=int, default=min(8, os.cpu_count() or 1), help="processes scoring samples in parallel")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        if args.bootstrap < 0:
            raise UsageError("--bootstrap must be ≥ 0")
        excluded: Counter = Counter()
        pairs = read_pairs(args.file, excluded)
    except PedgptError as e:
        print(f"pedgpt.score: {e}" if isinstance(e, UsageError) else e, file=sys.stderr)
        return 2
    if excluded["empty_reference"]:
        print(
            f"pedgpt.score: {excluded['empty_reference']} of {len(pairs) + excluded['empty_reference']} rows have an "
            "empty reference and are excluded from every score",
            file=sys.stderr,
        )
    report = build_report(
        pairs, args.tokenizer, args.convention, args.bootstrap, args.empty, args.seed, args.workers, excluded
    )
    print_table(report)
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
