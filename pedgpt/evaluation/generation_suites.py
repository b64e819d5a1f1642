"""Generation suites (medkqa, evidiag, trerecom, cmd, webmedqa): generate answers, score them.

Scores follow the paper's convention (``pedgpt.metrics.text``; per-sample, mean ×100) through the same
code as ``python -m pedgpt.score``, so the numbers equal what that CLI prints for predictions.jsonl.

* Reference-free items (no ``reference``, no ``turn_references``) cannot be scored: skipped, counted.
* Multi-turn items (``turn_references`` with one reference per user turn, as EviDiag's): the model answers
  every turn in order, with its own earlier answers as the history; each turn is one scored sample
  (``turn`` in its row, ``by_turn`` in the metrics).
* Items whose final user turn does not fit ``max_prompt_len`` are skipped and counted.
* ``by_task`` and ``by_department`` appear when the items carry those fields (``cmd``: per department).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from pedgpt.data.schema import EvalItem, Message
from pedgpt.evaluation.context import EvalContext, SuiteResult
from pedgpt.evaluation.scoring import Pair, score_pairs, summarize
from pedgpt.inference.generation import encode_prompt, generate_batch
from pedgpt.metrics import text


def _turns(item: EvalItem) -> tuple[list[Message], list[str]] | None:
    """(user turns, their references) for a multi-turn item answered turn by turn; None for single-turn."""
    users = [m for m in item.prompt if m.role == "user"]
    refs = item.turn_references
    return (users, list(refs)) if refs and len(refs) == len(users) and len(refs) > 1 else None


def _fits(ctx: EvalContext, conv: list[Message], system: str | None) -> bool:
    try:
        encode_prompt(ctx.loaded, conv, system, ctx.max_prompt_len)
        return True
    except ValueError:
        return False


def _generate(ctx: EvalContext, jobs: list[tuple[EvalItem, list[Message]]]) -> list[str]:
    return generate_batch(
        ctx.loaded,
        [conv for _, conv in jobs],
        ctx.settings,
        systems=[it.system for it, _ in jobs],
        tasks=[it.task for it, _ in jobs],
        batch_size=ctx.batch_size,
        max_prompt_len=ctx.max_prompt_len,
    )


def answer_items(ctx: EvalContext, items: list[EvalItem]) -> tuple[list[dict[str, Any]], Counter]:
    """Generate every scorable answer; rows hold prompt, reference, prediction, task, department, turn."""
    skipped: Counter = Counter()
    single, multi = [], []
    for it in items:
        if it.reference is None and not it.turn_references:
            skipped["reference_free"] += 1
        elif _turns(it) is not None:
            multi.append(it)
        elif _fits(ctx, it.prompt, it.system):
            single.append(it)
        else:
            skipped["prompt_too_long"] += 1
    rows = []

    def row(it: EvalItem, conv: list[Message], reference: str, prediction: str, turn: int | None) -> dict[str, Any]:
        return {
            "suite": it.suite,
            "id": it.id,
            "task": it.task,
            "department": it.department,
            "turn": turn,
            "prompt": [{"role": m.role, "content": m.content} for m in conv],
            "system": it.system,
            "reference": reference,
            "prediction": prediction,
        }

    for it, pred in zip(single, _generate(ctx, [(it, it.prompt) for it in single])):
        rows.append(row(it, it.prompt, it.reference, pred, None))
    history: dict[int, list[Message]] = {k: [] for k in range(len(multi))}
    alive = set(range(len(multi)))
    for turn in range(max((len(_turns(it)[0]) for it in multi), default=0)):
        jobs = []
        for k in sorted(alive):
            users, _ = _turns(multi[k])
            if turn < len(users):
                conv = history[k] + [users[turn]]
                if _fits(ctx, conv, multi[k].system):
                    jobs.append((k, conv))
                else:  # its later turns are left out too: they would need this turn's answer
                    skipped["prompt_too_long"] += 1
                    alive.discard(k)
        answers = _generate(ctx, [(multi[k], conv) for k, conv in jobs])
        for (k, conv), pred in zip(jobs, answers):
            rows.append(row(multi[k], conv, _turns(multi[k])[1][turn], pred, turn + 1))
            history[k] = conv + [Message("assistant", pred)]
    return rows, skipped


def score_rows(ctx: EvalContext, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall scores plus ``by_task`` / ``by_department`` / ``by_turn`` groups; adds per-row ``scores``."""
    pairs = [Pair(r["prediction"], r["reference"], r["task"], r["department"]) for r in rows]
    scores = score_pairs(pairs, ctx.metric_tokenizer, ctx.empty, workers=1)  # (N, len(text.KEYS)) in [0, 1]
    for r, s in zip(rows, scores):
        r["scores"] = {k: None if np.isnan(v) else round(100.0 * float(v), 4) for k, v in zip(text.KEYS, s)}
    out: dict[str, Any] = summarize(scores, None)
    for field, name in (("task", "by_task"), ("department", "by_department"), ("turn", "by_turn")):
        labels = [r[field] for r in rows]
        groups = sorted({g for g in labels if g is not None})
        if len(groups) > 1 or (groups and field == "department"):
            out[name] = {
                str(g): summarize(scores[[i for i, lab in enumerate(labels) if lab == g]], None) for g in groups
            }
    return out


def run_generation_suite(ctx: EvalContext, suite: str, items: list[EvalItem]) -> SuiteResult:
    rows, skipped = answer_items(ctx, items)
    metrics = score_rows(ctx, rows) if rows else {"n": 0}
    metrics["skipped"] = dict(skipped)
    return SuiteResult(suite, metrics, rows, dict(skipped))
