"""Corpus statistics: ``stats.json``, ``stats.md`` (with the paper's Table 1 comparison) and ``stats.png``.

Everything counts **kept** records, i.e. the records written to the output files. Token counts use the
chosen tokenizer (a ``tokenizer.json`` file or a local Hugging Face tokenizer folder); without one they
are character counts, and ``tokens.unit`` says which.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pedgpt.data.corpus.dedup import qa_text
from pedgpt.data.schema import PEDIATRIC_TASKS, TASK_TITLES, EvalItem, PreferencePair, PretrainText, Record

#: What the PediatricsGPT paper reports for PedCorpus (Table 1 and §3): tasks, sources and its size.
PAPER_PEDCORPUS = {
    "instructions": "300,000+ (multi-task, single- and multi-turn)",
    "tasks": "MedKQ&A, EviDiag, TreRecom",
    "sources": "pediatric textbooks, guidelines, knowledge graph, real doctor-patient conversations",
    "languages": "Chinese",
}


def load_counter(path: str | None) -> Callable[[str], int]:
    """A token counter from a tokenizer path, or the character count when ``path`` is empty."""
    if not path:
        return len
    if path.endswith(".json"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(path)
        return lambda text: len(tok.encode(text).ids)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return lambda text: len(hf(text, add_special_tokens=False)["input_ids"])


def record_text(r: Record) -> str:
    text = qa_text(r)
    if isinstance(r, PreferencePair):
        text += "\n" + r.rejected
    return ((getattr(r, "system", None) or "") + "\n" + text) if getattr(r, "system", None) else text


def task_of(r: Record) -> str:
    return "pretrain" if isinstance(r, PretrainText) else r.task


def compute(
    outputs: Mapping[str, Sequence[Record]],
    skipped: Mapping[str, int],
    contamination: Sequence[Mapping[str, str]],
    tokenizer: str | None = None,
) -> dict[str, Any]:
    """Statistics over ``outputs`` (relative output path → its records)."""
    count_tokens = load_counter(tokenizer)
    tasks, sources, splits, kinds, suites = Counter(), Counter(), Counter(), Counter(), Counter()
    tokens: dict[str, Counter] = {"by_file": Counter(), "by_task": Counter()}
    task_split: dict[str, Counter] = defaultdict(Counter)
    files = {}
    for path in sorted(outputs):
        records = outputs[path]
        files[path] = len(records)
        for r in records:
            t = task_of(r)
            if not isinstance(r, PretrainText):
                tasks[t] += 1
            sources[r.source] += 1
            splits[r.split or "none"] += 1
            kinds[r.kind] += 1
            task_split[t][r.split or "none"] += 1
            if isinstance(r, EvalItem):
                suites[r.suite] += 1
            n = count_tokens(record_text(r))
            tokens["by_file"][path] += n
            tokens["by_task"][t] += n
    by_suite = Counter(c["suite"] for c in contamination)
    return {
        "files": files,
        "tasks": dict(sorted(tasks.items())),
        "sources": dict(sorted(sources.items())),
        "splits": dict(sorted(splits.items())),
        "kinds": dict(sorted(kinds.items())),
        "suites": dict(sorted(suites.items())),
        "task_splits": {t: dict(sorted(c.items())) for t, c in sorted(task_split.items())},
        "tokens": {
            "unit": "tokens" if tokenizer else "chars",
            "tokenizer": tokenizer or None,
            "by_file": dict(sorted(tokens["by_file"].items())),
            "by_task": dict(sorted(tokens["by_task"].items())),
        },
        "skipped": dict(sorted(skipped.items())),
        "contamination": {"removed": len(contamination), "by_suite": dict(sorted(by_suite.items()))},
    }


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(stats: Mapping[str, Any]) -> str:
    """``stats.md``: the paper comparison, then counts per task/split, source, file, skip reason."""
    ts = stats["task_splits"]
    ped_total = sum(stats["tasks"].get(t, 0) for t in PEDIATRIC_TASKS)
    ins_total = sum(n for k, n in stats["kinds"].items() if k != "pretrain")
    parts = [
        "# PedCorpus build statistics",
        "",
        "## Comparison with the paper's PedCorpus (Table 1)",
        "",
        _table(
            [
                ["instructions", PAPER_PEDCORPUS["instructions"], f"{ins_total:,} (incl. eval items)"],
                ["pediatric-task items", "most of the above", f"{ped_total:,}"],
                ["tasks", PAPER_PEDCORPUS["tasks"], ", ".join(t for t in PEDIATRIC_TASKS if stats["tasks"].get(t))],
                ["sources", PAPER_PEDCORPUS["sources"], ", ".join(stats["sources"])],
                ["language", PAPER_PEDCORPUS["languages"], "Chinese"],
            ],
            ["", "paper (PedCorpus)", "this build"],
        ),
        "",
        "The paper's corpus was never released; this build uses public data only, so it is smaller "
        "and its knowledge questions are templated from a disease knowledge graph.",
        "",
        "## Records per task and split",
        "",
        _table(
            [
                [
                    TASK_TITLES.get(t, t),
                    *(ts[t].get(s, 0) for s in ("train", "dev", "test")),
                    f"{stats['tokens']['by_task'].get(t, 0):,}",
                ]
                for t in ts
            ],
            ["task", "train", "dev", "test", stats["tokens"]["unit"]],
        ),
        "",
        "## Records per source",
        "",
        _table([[s, n] for s, n in stats["sources"].items()], ["source", "records"]),
        "",
        "## Output files",
        "",
        _table([[f, n] for f, n in stats["files"].items()], ["file", "records"]),
        "",
        "## Skipped records",
        "",
        _table([[r, n] for r, n in stats["skipped"].items()] or [["(none)", 0]], ["reason", "records"]),
        "",
        f"Contamination check: {stats['contamination']['removed']} training records removed "
        f"(by suite: {json.dumps(stats['contamination']['by_suite'], ensure_ascii=False)}).",
        "",
    ]
    acc = stats.get("accounting")
    if acc:
        parts += [
            "## Accounting (every record kept or skipped for a counted reason)",
            "",
            _table(
                [
                    ["source rows", acc["rows"]["seen"], acc["rows"]["kept"], sum(acc["rows"]["skipped"].values())],
                    [
                        "KG diseases",
                        acc["diseases"]["read"],
                        acc["diseases"]["used"],
                        sum(acc["diseases"]["skipped"].values()),
                    ],
                    [
                        "records",
                        acc["records"]["made"],
                        acc["records"]["written"],
                        sum(acc["records"]["skipped"].values()),
                    ],
                ],
                ["stage", "in", "kept", "skipped"],
            ),
            "",
            f"Where the skipped records came from (the first examples of each reason): "
            f"`{stats.get('skip_log', 'skipped.jsonl')}`.",
            "",
        ]
    return "\n".join(parts)


def chart(stats: Mapping[str, Any], path: str) -> None:
    """One PNG: records per task and split (stacked bars), and records per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ts = stats["task_splits"]
    tasks = list(ts)
    bottom = [0] * len(tasks)
    for split in ("train", "dev", "test"):
        vals = [ts[t].get(split, 0) for t in tasks]
        ax1.bar(tasks, vals, bottom=bottom, label=split)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax1.set_title("records per task and split")
    ax1.legend()
    ax1.tick_params(axis="x", rotation=30)
    src = stats["sources"]
    ax2.barh(list(src), list(src.values()))
    ax2.set_xscale("log")
    ax2.set_title("records per source (log)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write(stats: Mapping[str, Any], out_dir: str) -> None:
    with open(os.path.join(out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "stats.md"), "w", encoding="utf-8") as f:
        f.write(markdown(stats))
    chart(stats, os.path.join(out_dir, "stats.png"))
