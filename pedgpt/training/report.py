"""The run report: ``report.json`` + ``report.md`` in the run directory and a table on the console.

Stage-specific sections and notes come from each stage's :meth:`~pedgpt.stages.registry.Stage.markdown` and
:meth:`~pedgpt.stages.registry.Stage.console`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from pedgpt.stages.registry import get_stage

KEYS = ("train_loss_first", "train_loss_last", "val_loss", "wall_seconds")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _stages(report: dict[str, Any]) -> list[str]:
    return [s for s in report.get("pipeline", []) if s in report]


def write_report(run_dir: str, report: dict[str, Any]) -> tuple[str, str]:
    jpath, mpath = os.path.join(run_dir, "report.json"), os.path.join(run_dir, "report.md")
    with open(jpath, "w") as f:
        json.dump(report, f, indent=2, ensure_ascii=False, sort_keys=False)
    lines = [
        "# pedgpt run report",
        "",
        f"run dir: `{run_dir}`  ",
        f"total wall time: {report.get('wall_seconds', 0):.1f} s",
        "",
        "| stage | " + " | ".join(KEYS) + " | export |",
        "|---" * (len(KEYS) + 2) + "|",
    ]
    for s in _stages(report):
        r = report[s]
        lines.append(f"| {s} | " + " | ".join(_fmt(r.get(k)) for k in KEYS) + f" | `{r.get('export_dir')}` |")
    for s in _stages(report):
        section = get_stage(s).markdown(report[s], run_dir)
        if section:
            lines += [""] + section
    for extra in report.get("markdown_sections", []):
        lines += ["", extra]
    with open(mpath, "w") as f:
        f.write("\n".join(lines) + "\n")
    return jpath, mpath


def print_report(report: dict[str, Any]) -> None:
    t = Table(title="pedgpt pipeline")
    for c in ("stage",) + KEYS + ("extra",):
        t.add_column(c)
    for s in report.get("pipeline", []):
        r = report.get(s, {})
        t.add_row(s, *(_fmt(r.get(k)) for k in KEYS), get_stage(s).console(r) if r else "")
    Console(stderr=True).print(t)
