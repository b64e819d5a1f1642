"""Collect the expert-count ablation into one table (Markdown + CSV) and a plot.

Each run directory holds the pipeline's ``report.json`` with a ``mole`` stage (a sweep job) or a
``lora_baseline`` stage (the equal-size peft LoRA, ``pipeline=[lora_baseline]``); a sweep run's adapter
settings come from its ``.hydra/config.yaml``. Columns: configuration,
token-mean validation NLL per task and overall, trainable %, step time (median ``train/step_time`` of
``mole/metrics.csv``; ``wall_seconds / steps`` of the stage when that file has none), router entropy and
each task's most used specific expert. The plot has one panel per task: validation loss against the
number of specific experts for the first sweep, the LoRA baseline dashed.

    python experiments/expert_ablation/collect.py multirun/expert_ablation multirun/expert_ablation_router \\
        --baseline multirun/expert_ablation_lora --out experiments/expert_ablation/results
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pedgpt.data.schema import TASKS

FIXED = ("config", "sweep", "num_specific", "router")
TAIL = ("val_loss", "trainable_pct", "step_ms", "router_entropy", "top_expert")
#: generation scores of the final weights (the stage's ``gen_scores``, all tasks), ×100
GEN = ("gen_rougeL", "gen_bleu4", "gen_gleu", "gen_distinct2")


def task_losses(run: Path, mole: dict[str, Any], stage: str = "mole") -> dict[str, float]:
    """Per-task validation NLL: the report's ``val_loss_by_task``, else the last ``val/loss/<task>`` values
    of ``mole/metrics.csv`` (runs whose pipeline did not copy them into the report)."""
    if mole.get("val_loss_by_task"):
        return {t: float(v) for t, v in mole["val_loss_by_task"].items()}
    out: dict[str, float] = {}
    metrics = run / stage / "metrics.csv"
    if metrics.exists():
        for row in csv.DictReader(open(metrics)):
            out.update({t: float(row[f"val/loss/{t}"]) for t in TASKS if row.get(f"val/loss/{t}")})
    return out


def step_ms(run: Path, mole: dict[str, Any], stage: str = "mole") -> float:
    """Median logged training step time in ms; ``wall_seconds / steps`` of the stage without a metrics file."""
    metrics = run / stage / "metrics.csv"
    times = []
    if metrics.exists():
        times = [float(r["train/step_time"]) for r in csv.DictReader(open(metrics)) if r.get("train/step_time")]
    if times:
        return 1000 * statistics.median(times)
    return 1000 * mole["wall_seconds"] / max(1, mole["steps"])


def top_experts(weights: dict[str, list[float]]) -> str:
    """'task:eJ/w' for each task's largest mean gate weight, e.g. ``medkqa:e2/0.41 evidiag:e0/0.38``."""
    parts = []
    for task, w in weights.items():
        j = max(range(len(w)), key=w.__getitem__)
        parts.append(f"{task}:e{j}/{w[j]:.2f}")
    return " ".join(parts)


def load_run(run: Path, sweep: str) -> dict[str, Any]:
    """One table row from a run directory (a sweep job or the LoRA baseline)."""
    report = json.load(open(run / "report.json"))
    stage = "lora_baseline" if "lora_baseline" in report else "mole"
    mole = report[stage]
    if "baseline" in mole:
        b = mole["baseline"]
        row = {"config": f"peft LoRA r={b['rank']}", "sweep": sweep, "num_specific": "", "router": ""}
    else:
        a = OmegaConf.load(run / ".hydra" / "config.yaml").adapter
        row = {
            "config": f"MoE-LoRA {a.num_universal}u+{a.num_specific}s r={a.rank} {a.router}",
            "sweep": sweep,
            "num_specific": int(a.num_specific),
            "router": str(a.router),
        }
    row.update(task_losses(run, mole, stage))
    row.update(
        val_loss=float(mole["val_loss"]),
        trainable_pct=100 * mole["params_trainable"] / mole["params_total"],
        step_ms=step_ms(run, mole, stage),
        router_entropy=mole.get("router_entropy", ""),
        top_expert=top_experts(mole.get("router_weights") or {}),
    )
    overall = (mole.get("gen_scores") or {}).get("overall") or {}
    row.update({c: float(overall[c[4:]]) for c in GEN if c[4:] in overall})
    return row


def sweep_runs(sweep: Path) -> list[Path]:
    """Job directories ``<sweep>/<n>`` holding a report, in job order."""
    runs = [p for p in sweep.iterdir() if p.name.isdigit() and (p / "report.json").exists()]
    if not runs:
        raise FileNotFoundError(f"{sweep}: no <n>/report.json (has the multirun finished?)")
    return sorted(runs, key=lambda p: int(p.name))


def collect(sweeps: list[Path], baseline: Path | None) -> list[dict[str, Any]]:
    rows = [load_run(run, sweep.name) for sweep in sweeps for run in sweep_runs(sweep)]
    if baseline is not None:
        rows.append(load_run(baseline, "baseline"))
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    tasks = [t for t in TASKS if any(t in r for r in rows)]
    gen = [c for c in GEN if any(c in r for r in rows)]
    return [*FIXED, *tasks, *TAIL, *gen]


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    head = [c if c not in TASKS else f"val {c}" for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns(rows), restval="")
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict[str, Any]], sweep: str, path: Path) -> None:
    """Per-task validation loss vs number of specific experts (rows of ``sweep``), baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted((r for r in rows if r["sweep"] == sweep), key=lambda r: r["num_specific"])
    base = next((r for r in rows if r["sweep"] == "baseline"), None)
    tasks = [t for t in TASKS if any(t in r for r in runs)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.6 * len(tasks) + 0.6, 3.2), squeeze=False)
    for k, (task, ax) in enumerate(zip(tasks, axes[0])):  # one panel per task: its own loss scale
        color = f"C{k}"
        pts = [(r["num_specific"], r[task]) for r in runs if task in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label="MoE-LoRA")
        if base is not None and task in base:
            ax.axhline(base[task], color=color, linestyle="--", linewidth=1, label=base["config"])
        ax.set_xticks(sorted({r["num_specific"] for r in runs}))
        ax.set_title(task)
        ax.set_xlabel("specific experts (+1 universal)")
    axes[0][0].set_ylabel("validation NLL per token")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweeps", nargs="+", type=Path, help="multirun sweep directories; the first one is plotted")
    ap.add_argument("--baseline", type=Path, help="run directory of the pipeline=[lora_baseline] run")
    ap.add_argument("--out", type=Path, required=True, help="directory for ablation.{md,csv,png}")
    args = ap.parse_args()
    rows = collect(args.sweeps, args.baseline)
    os.makedirs(args.out, exist_ok=True)
    (args.out / "ablation.md").write_text(to_markdown(rows))
    write_csv(rows, args.out / "ablation.csv")
    plot(rows, args.sweeps[0].name, args.out / "ablation.png")
    print(to_markdown(rows), end="")


if __name__ == "__main__":
    main()
