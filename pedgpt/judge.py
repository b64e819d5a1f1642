"""Pairwise judge of two prediction files (the paper's usefulness / correctness / consistency / smoothness).

    python -m pedgpt.judge A.jsonl B.jsonl [--backend http|hf] [--out DIR] [--base-url URL] [--model NAME|DIR]
                          [--api-key-env VAR] [--config FILE.yaml] [--with-reference] [--max-tokens N]
                          [--limit N]

A.jsonl / B.jsonl: ``predictions.jsonl`` of ``python -m pedgpt.evaluate`` (or any JSONL with ``id``,
``prompt`` (messages or text) and ``prediction``; ``task``, ``suite``, ``turn``, ``reference`` optional).
Rows are matched on (suite, id, turn); multiple-choice and preference rows are ignored. Every pair is
judged twice, answers swapped; disagreement between the two orders is a tie. Unparseable verdicts are
counted and left out of win / tie / lose.

Writes ``judgments.jsonl`` (both raw replies per pair), ``judge.json`` and ``judge_win_tie_lose.png``
(stacked bars per task) to ``--out``; the last stdout line is judge.json's object: win / tie / lose /
unparseable counts and rates for A against B, overall and ``by_task``. HTTP settings come from the flags,
``--config`` (keys ``base_url``, ``model``, ``api_key_env``, ``timeout_s``) or the environment (see
``pedgpt.evaluation.judging.backends``); the API key itself is only ever read from the environment and never written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from pedgpt.common.errors import PedgptError, UsageError
from pedgpt.config.cli import ToolParser
from pedgpt.evaluation.judging.backends import JudgeError
from pedgpt.evaluation.judging.run import OUTCOMES, build_backend, run_judge


def parser() -> ToolParser:
    p = ToolParser("python -m pedgpt.judge", __doc__)
    p.add_argument("a")
    p.add_argument("b")
    p.option("backend", choices=("http", "hf"), default="http")
    p.option("out", default="judge_out")
    p.option("base_url")
    p.option("model", help="the endpoint's model name (http) or a local export directory (hf)")
    p.option("api_key_env", help="name of the environment variable that holds the API key")
    p.option("config", help="YAML with base_url, model, api_key_env, timeout_s, max_tokens")
    p.option("with_reference", action="store_true", help="show the reference answer to the judge")
    p.option("max_tokens", type=int, default=512, help="longest judge reply, in tokens")
    p.option("limit", type=int)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse(argv)
        result = run_judge(args.a, args.b, build_backend(args), args.out, args.with_reference, args.limit)
    except (PedgptError, JudgeError) as e:
        print(f"pedgpt.judge: {e}" if isinstance(e, UsageError) else f"error: {e}", file=sys.stderr)
        return 2
    for task, t in {**result["by_task"], "overall": result}.items():
        rates = " ".join(f"{k} {t[k]}" for k in (*OUTCOMES, "unparseable"))
        print(f"{task:<12} {rates}  (n={t['n']})", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
