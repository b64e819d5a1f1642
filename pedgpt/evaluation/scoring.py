"""Scoring a JSONL file of predictions against references in the paper's Chinese metric convention
(the library behind ``python -m pedgpt.score``).

    python -m pedgpt.score FILE [--tokenizer jieba|char] [--convention paper|sacrebleu]
                                [--bootstrap N] [--empty zero|skip_rouge] [--seed S] [--workers W]

Each line of FILE is an object with string ``prediction`` and ``reference`` and optionally ``task`` and
``department`` (string or null). A table goes to stderr; the LAST stdout line is one JSON object:
``{rouge1 … distinct2[, sacrebleu], n, [by_task], [by_department], [ci95], convention}`` where the groups
hold objects of the overall shape, ``ci95`` maps each key to ``[low, high]`` (percentile bootstrap over
samples, overall scores only), and scores are means ×100 (``null`` where no sample counts). A malformed
line prints ``FILE:LINE: reason`` and exits with status 2.

A row whose reference is empty (or only whitespace) has nothing to score against: it is excluded, never
scored as 0, and counted in ``excluded: {"empty_reference": k}`` (the table's caption says so too; ``n``
counts the scored rows). A file whose every reference is empty is an error.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from pedgpt.common.errors import PedgptError
from pedgpt.metrics import bootstrap, text

_GROUP_FIELDS = (("task", "by_task"), ("department", "by_department"))


class InputError(PedgptError, ValueError):
    """A problem with the input file; the message names the file (and line)."""


@dataclass(frozen=True)
class Pair:
    prediction: str
    reference: str
    task: str | None = None
    department: str | None = None


def read_pairs(path: str, excluded: Counter | None = None) -> list[Pair]:
    """Parse FILE; raises :class:`InputError` ``FILE:LINE: reason`` on the first malformed line. Rows with an
    empty reference are left out and counted in ``excluded["empty_reference"]``."""
    excluded = excluded if excluded is not None else Counter()
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.readlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    pairs = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            pair = _parse(line)
        except ValueError as e:
            raise InputError(f"{path}:{lineno}: {e}") from None
        if not pair.reference.strip():
            excluded["empty_reference"] += 1
            continue
        pairs.append(pair)
    if not pairs:
        n = excluded["empty_reference"]
        raise InputError(
            f"{path}: no records with a non-empty reference ({n} excluded)" if n else f"{path}: no records"
        )
    return pairs


def _parse(line: str) -> Pair:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for key in ("prediction", "reference"):
        if key not in obj:
            raise ValueError(f"missing field {key!r}")
        if not isinstance(obj[key], str):
            raise ValueError(f"field {key!r} must be a string, got {type(obj[key]).__name__}")
    for key, _ in _GROUP_FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ValueError(f"field {key!r} must be a string or null, got {type(obj[key]).__name__}")
    return Pair(obj["prediction"], obj["reference"], obj.get("task"), obj.get("department"))


def _score_one(args: tuple[str, str, str, str]) -> list[float]:
    prediction, reference, tokenizer, empty = args
    scores = text.sample_scores(prediction, reference, tokenizer, empty)
    return [scores[k] for k in text.KEYS]


def score_pairs(pairs: list[Pair], tokenizer: str, empty: str, workers: int) -> np.ndarray:
    """Per-sample scores in [0, 1], shape (N, len(text.KEYS)); NaN = left out of that key's mean."""
    text.tokenize("", tokenizer)  # load jieba's dictionary once, before any fork
    jobs = [(p.prediction, p.reference, tokenizer, empty) for p in pairs]
    if workers > 1 and len(jobs) >= 64:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            rows = pool.map(_score_one, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
    else:
        rows = [_score_one(job) for job in jobs]
    return np.asarray(rows, dtype=np.float64).reshape(len(pairs), len(text.KEYS))


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def summarize(scores: np.ndarray, stats: np.ndarray | None) -> dict[str, float | int | None]:
    """Means ×100 of per-sample scores (N, K) and, given sacreBLEU statistics (N, 10), corpus sacreBLEU."""
    out: dict[str, float | int | None] = {}
    for j, key in enumerate(text.KEYS):
        col = scores[:, j]
        kept = col[~np.isnan(col)]
        out[key] = _number(100.0 * kept.mean()) if kept.size else None
    if stats is not None:
        out["sacrebleu"] = text.sacrebleu_from_stats(stats.sum(axis=0))
    out["n"] = int(scores.shape[0])
    return out


def confidence_intervals(
    scores: np.ndarray, stats: np.ndarray | None, n_resamples: int, seed: int
) -> dict[str, list[float | None]]:
    """95% percentile bootstrap interval of every reported score (same resamples for every key)."""
    ci = bootstrap.percentile_ci(100.0 * bootstrap.bootstrap(scores, n_resamples, "nanmean", seed))
    out = {key: [_number(lo), _number(hi)] for key, (lo, hi) in zip(text.KEYS, ci)}
    if stats is not None:
        sums = bootstrap.bootstrap(stats, n_resamples, "sum", seed)
        values = np.array([[text.sacrebleu_from_stats(row)] for row in sums])
        lo, hi = bootstrap.percentile_ci(values)[0]
        out["sacrebleu"] = [_number(lo), _number(hi)]
    return out


def build_report(
    pairs: list[Pair],
    tokenizer: str = "jieba",
    convention: str = "paper",
    n_bootstrap: int = 0,
    empty: str = "zero",
    seed: int = 0,
    workers: int = 1,
    excluded: Counter | None = None,
) -> dict:
    """The JSON object that ``python -m pedgpt.score`` prints last (``excluded``: rows left out by
    :func:`read_pairs`, reported as ``excluded``)."""
    scores = score_pairs(pairs, tokenizer, empty, workers)
    stats = None
    if convention == "sacrebleu":
        stats = np.asarray(
            text.sacrebleu_stats([p.prediction for p in pairs], [p.reference for p in pairs]), dtype=np.float64
        )
    report: dict = summarize(scores, stats)
    for field, name in _GROUP_FIELDS:
        labels = [getattr(p, field) for p in pairs]
        groups = sorted({label for label in labels if label is not None})
        if groups:
            report[name] = {}
            for g in groups:
                idx = np.array([i for i, label in enumerate(labels) if label == g])
                report[name][g] = summarize(scores[idx], None if stats is None else stats[idx])
    if n_bootstrap:
        report["ci95"] = confidence_intervals(scores, stats, n_bootstrap, seed)
    report["convention"] = text.describe_convention(tokenizer, empty, sacrebleu=convention == "sacrebleu")
    report["excluded"] = {"empty_reference": int((excluded or Counter())["empty_reference"])}
    return report


def print_table(report: dict, file=sys.stderr) -> None:
    """The overall and per-group scores as a rich table."""
    keys = [k for k in (*text.KEYS, "sacrebleu") if k in report]
    caption = report["convention"]
    if report.get("excluded", {}).get("empty_reference"):
        caption += f"; {report['excluded']['empty_reference']} rows with an empty reference excluded"
    table = Table(title="Chinese generation scores (×100)", caption=caption)
    for col in ("group", *keys, "n"):
        table.add_column(col, justify="left" if col == "group" else "right")

    def row(label: str, values: dict) -> None:
        cells = ["—" if values[k] is None else f"{values[k]:.2f}" for k in keys]
        table.add_row(label, *cells, str(values["n"]))

    row("overall", report)
    if "ci95" in report:
        table.add_row("  95% CI", *[_format_ci(report["ci95"][k]) for k in keys], "")
    for _, name in _GROUP_FIELDS:
        for group, values in report.get(name, {}).items():
            row(f"{name[3:]}={group}", values)
    column = 15 if "ci95" in report else 11
    Console(file=file, width=max(120, column * (len(keys) + 2))).print(table)


def _format_ci(bounds: list[float | None]) -> str:
    lo, hi = bounds
    return "—" if lo is None or hi is None else f"{lo:.2f}–{hi:.2f}"
