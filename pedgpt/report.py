"""The run report: ``report.json`` + ``report.md`` in the run directory and a table on the console."""
from __future__ import annotations

import json
import math
import os
from typing import Any

KEYS = ("train_loss_first", "train_loss_last", "val_loss", "wall_seconds")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def write_report(run_dir: str, report: dict[str, Any]) -> tuple[str, str]:
    jpath, mpath = os.path.join(run_dir, "report.json"), os.path.join(run_dir, "report.md")
    with open(jpath, "w") as f:
        json.dump(report, f, indent=2, ensure_ascii=False, sort_keys=False)
    stages = [s for s in report.get("pipeline", []) if s in report]
    lines = ["# pedgpt run report", "", f"run dir: `{run_dir}`  ", f"total wall time: {report.get('wall_seconds', 0):.1f} s",
             "", "| stage | " + " | ".join(KEYS) + " | export |", "|---" * (len(KEYS) + 2) + "|"]
    for s in stages:
        r = report[s]
        lines.append(f"| {s} | " + " | ".join(_fmt(r.get(k)) for k in KEYS) + f" | `{r.get('export_dir')}` |")
    if "dfpo" in report:
        d = report["dfpo"]
        lines += ["", "## DFPO (held-out pairs)", "", f"- reward accuracy: {_fmt(d.get('val_reward_accuracy'))}",
                  f"- reward margin: {_fmt(d.get('val_reward_margin'))}", f"- pairs: {d.get('val_pairs')}"]
    if "mole" in report and report["mole"].get("router_weights"):
        m = report["mole"]
        lines += ["", "## MoE-LoRA: mean router weight per specific expert (validation)", ""]
        n = max(len(v) for v in m["router_weights"].values())
        lines += ["| task | " + " | ".join(f"e{j}" for j in range(n)) + " |", "|---" * (n + 1) + "|"]
        lines += [f"| {t} | " + " | ".join(f"{x:.3f}" for x in w) + " |" for t, w in m["router_weights"].items()]
        if m.get("router_heatmap"):
            lines += ["", f"![router heat-map]({os.path.relpath(m['router_heatmap'], run_dir)})"]
    for extra in report.get("markdown_sections", []):
        lines += ["", extra]
    with open(mpath, "w") as f:
        f.write("\n".join(lines) + "\n")
    return jpath, mpath


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="pedgpt pipeline")
    for c in ("stage",) + KEYS + ("extra",):
        t.add_column(c)
    for s in report.get("pipeline", []):
        r = report.get(s, {})
        extra = ""
        if s == "dfpo":
            extra = f"reward acc {_fmt(r.get('val_reward_accuracy'))} on {r.get('val_pairs')} pairs"
        t.add_row(s, *(_fmt(r.get(k)) for k in KEYS), extra)
    Console(stderr=True).print(t)


def router_heatmap(weights: dict[str, list[float]], path: str) -> str:
    """Tasks × experts heat-map PNG of mean router weights."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(weights)
    data = [weights[t] for t in tasks]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(data[0]), 0.9 + 0.5 * len(tasks)))
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(data[0])), [f"e{j}" for j in range(len(data[0]))])
    ax.set_yticks(range(len(tasks)), tasks)
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
    fig.colorbar(im, ax=ax)
    ax.set_title("mean router weight (task × specific expert)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
