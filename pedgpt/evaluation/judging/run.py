"""Pairwise judging of two prediction files on the paper's usefulness / correctness / consistency / smoothness
(the library behind ``python -m pedgpt.judge``).

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
import os
from collections import defaultdict
from typing import Any

import matplotlib
from omegaconf import OmegaConf

from pedgpt.common.errors import PedgptError
from pedgpt.evaluation.judging.backends import HFJudge, HTTPJudge
from pedgpt.evaluation.judging.verdict import combine, judge_prompt, parse_verdict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUTCOMES = ("win", "tie", "lose")


class InputError(PedgptError, ValueError):
    """A malformed prediction file; the message names file and line."""


def read_predictions(path: str) -> dict[tuple, dict[str, Any]]:
    """Generation rows of a predictions file keyed by (suite, id, turn)."""
    rows: dict[tuple, dict[str, Any]] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(r, dict) or "prediction" not in r or "choices" in r:
                continue
            if not isinstance(r.get("prediction"), str) or "id" not in r or "prompt" not in r:
                raise InputError(f"{path}:{lineno}: needs string `prediction`, `id` and `prompt`")
            rows[(r.get("suite"), str(r["id"]), r.get("turn"))] = r
    return rows


def question_text(prompt: Any) -> str:
    """The conversation shown to the judge: plain text, or role-labelled turns."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1:
        return prompt[0]["content"]
    names = {"user": "用户", "assistant": "助手", "system": "系统"}
    return "\n".join(f"{names.get(m['role'], m['role'])}：{m['content']}" for m in prompt)


def tally(outcomes: list[str | None]) -> dict[str, Any]:
    counts = {k: sum(o == k for o in outcomes) for k in OUTCOMES}
    judged = sum(counts.values())
    return {
        **counts,
        "unparseable": sum(o is None for o in outcomes),
        "n": len(outcomes),
        **{f"{k}_rate": (100.0 * counts[k] / judged if judged else None) for k in OUTCOMES},
    }


def run_judge(
    a_path: str, b_path: str, backend: Any, out_dir: str, with_reference: bool = False, limit: int | None = None
) -> dict[str, Any]:
    a, b = read_predictions(a_path), read_predictions(b_path)
    keys = [k for k in a if k in b][:limit] if limit is not None else [k for k in a if k in b]
    if not keys:
        raise InputError(f"{a_path} and {b_path} share no generation rows (matched on suite, id, turn)")
    prompts = []
    for k in keys:
        q, ref = question_text(a[k]["prompt"]), a[k].get("reference") if with_reference else None
        prompts += [
            judge_prompt(q, a[k]["prediction"], b[k]["prediction"], ref),
            judge_prompt(q, b[k]["prediction"], a[k]["prediction"], ref),
        ]
    replies = backend.judge(prompts)
    os.makedirs(out_dir, exist_ok=True)
    by_task: dict[str, list[str | None]] = defaultdict(list)
    with open(os.path.join(out_dir, "judgments.jsonl"), "w", encoding="utf-8") as f:
        for i, k in enumerate(keys):
            first, swapped = replies[2 * i], replies[2 * i + 1]
            v1, v2 = parse_verdict(first), parse_verdict(swapped)
            outcome = combine(v1, v2)
            task = a[k].get("task") or "all"
            by_task[task].append(outcome)
            f.write(
                json.dumps(
                    {
                        "suite": k[0],
                        "id": k[1],
                        "turn": k[2],
                        "task": task,
                        "verdict_a_first": v1,
                        "verdict_b_first": v2,
                        "outcome_for_a": outcome,
                        "reply_a_first": first,
                        "reply_b_first": swapped,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    result = {
        "a": a_path,
        "b": b_path,
        "judge": backend.describe(),
        "criteria": "usefulness, correctness, consistency, smoothness; both orders, disagreement = tie",
        **tally([o for outs in by_task.values() for o in outs]),
        "unmatched": len(set(a) ^ set(b)),
        "by_task": {t: tally(o) for t, o in sorted(by_task.items())},
    }
    result["chart"] = plot_win_tie_lose(
        result["by_task"],
        os.path.join(out_dir, "judge_win_tie_lose.png"),
        os.path.basename(a_path),
        os.path.basename(b_path),
    )
    with open(os.path.join(out_dir, "judge.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    return result


def plot_win_tie_lose(by_task: dict[str, dict], path: str, a_name: str, b_name: str) -> str:
    """Stacked horizontal bars of win / tie / lose rates (%) per task."""
    tasks = list(by_task)
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(tasks) + 1.6))
    left = [0.0] * len(tasks)
    for outcome, color in zip(OUTCOMES, ("tab:green", "tab:gray", "tab:red")):
        vals = [by_task[t][f"{outcome}_rate"] or 0.0 for t in tasks]
        ax.barh(tasks, vals, left=left, color=color, label=outcome)
        left = [x + v for x, v in zip(left, vals)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.set_title(f"{a_name} vs {b_name}")
    ax.legend(ncol=3, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def build_backend(args: Any):
    """The judge backend of parsed arguments (``backend``, ``model``, ``base_url``, ``api_key_env``, ``config``,
    ``max_tokens``)."""
    conf: dict[str, Any] = {}
    if args.config:
        conf = OmegaConf.to_container(OmegaConf.load(args.config), resolve=True) or {}
        allowed = {"base_url", "model", "api_key_env", "timeout_s", "max_tokens"}
        if set(conf) - allowed:
            raise InputError(f"{args.config}: unknown keys {sorted(set(conf) - allowed)}; allowed: {sorted(allowed)}")
    if args.backend == "hf":
        model = args.model or conf.get("model")
        if not model:
            raise InputError("--backend hf needs --model DIR (a local HF export)")
        return HFJudge(model, max_new_tokens=args.max_tokens)
    return HTTPJudge(
        base_url=args.base_url or conf.get("base_url"),
        model=args.model or conf.get("model"),
        api_key_env=args.api_key_env or conf.get("api_key_env"),
        timeout_s=float(conf.get("timeout_s", 120)),
        max_tokens=int(conf.get("max_tokens", args.max_tokens)),
    )
