"""An evaluation run's files: predictions.jsonl, metrics.json, report.md, PNG charts; W&B tables.

Charts (matplotlib, Agg backend):

* ``generation_scores.png`` — the ten paper metrics of every generation suite, grouped bars;
* ``<suite>_gleu_by_department.png`` — per-department GLEU (the paper's CMD figure), for suites with departments;
* ``cmmlu_med_by_subject.png`` — raw and length-normalised accuracy per subject.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from pedgpt.common.logs import wandb_mode
from pedgpt.metrics import text

CHART_KEYS = text.KEYS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "SimHei", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _quiet_glyph_warnings() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message="Glyph .* missing from font")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def write_predictions(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _finite(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else 0.0


def plot_generation_scores(suites: dict[str, dict], path: str) -> str | None:
    gen = {s: m for s, m in suites.items() if "gleu" in m}
    if not gen:
        return None
    plt = _plt()
    _quiet_glyph_warnings()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(CHART_KEYS)), 3.8))
    width = 0.8 / len(gen)
    for j, (suite, m) in enumerate(gen.items()):
        xs = [i + (j - (len(gen) - 1) / 2) * width for i in range(len(CHART_KEYS))]
        ax.bar(xs, [_finite(m.get(k)) for k in CHART_KEYS], width, label=f"{suite} (n={m.get('n')})")
    ax.set_xticks(range(len(CHART_KEYS)), CHART_KEYS, rotation=30)
    ax.set_ylabel("score (×100)")
    ax.set_title("Generation suites (paper convention)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def plot_department_gleu(suite: str, by_department: dict[str, dict], path: str) -> str:
    plt = _plt()
    _quiet_glyph_warnings()
    depts = sorted(by_department, key=lambda d: -_finite(by_department[d].get("gleu")))
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(depts) + 2), 3.8))
    ax.bar(range(len(depts)), [_finite(by_department[d].get("gleu")) for d in depts], color="tab:green")
    ax.set_xticks(range(len(depts)), depts, rotation=45, ha="right")
    ax.set_ylabel("GLEU (×100)")
    ax.set_title(f"{suite}: GLEU by department")
    return _save(fig, path)


def plot_subject_accuracy(by_subject: dict[str, dict], path: str) -> str:
    plt = _plt()
    _quiet_glyph_warnings()
    subjects = sorted(by_subject)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(subjects) + 2), 3.8))
    xs = range(len(subjects))
    ax.bar([x - 0.2 for x in xs], [_finite(by_subject[s]["accuracy"]) for s in subjects], 0.4, label="raw")
    ax.bar(
        [x + 0.2 for x in xs], [_finite(by_subject[s]["accuracy_norm"]) for s in subjects], 0.4, label="per-character"
    )
    ax.set_xticks(list(xs), subjects, rotation=45, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("cmmlu_med: accuracy by subject")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_charts(out_dir: str, suites: dict[str, dict]) -> list[str]:
    charts = [plot_generation_scores(suites, os.path.join(out_dir, "generation_scores.png"))]
    for suite, m in suites.items():
        if m.get("by_department"):
            charts.append(
                plot_department_gleu(
                    suite, m["by_department"], os.path.join(out_dir, f"{suite}_gleu_by_department.png")
                )
            )
        if m.get("by_subject"):
            charts.append(plot_subject_accuracy(m["by_subject"], os.path.join(out_dir, f"{suite}_by_subject.png")))
    return [c for c in charts if c]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def markdown(summary: dict[str, Any], charts: list[str], out_dir: str) -> str:
    """report.md: one table for generation suites, then multiple choice, preference, unavailable suites."""
    suites = summary["suites"]
    lines = [
        "# pedgpt evaluation",
        "",
        f"model: `{summary['model']}`" + (f"  adapter: `{summary['adapter']}`" if summary.get("adapter") else ""),
        f"generation: `{json.dumps(summary['generation'])}`",
        "",
    ]
    gen = {s: m for s, m in suites.items() if "gleu" in m}
    if gen:
        lines += [
            "## Generation suites (×100)",
            "",
            "| suite | n | " + " | ".join(CHART_KEYS) + " | skipped |",
            "|---" * (len(CHART_KEYS) + 3) + "|",
        ]
        for s, m in gen.items():
            lines.append(
                f"| {s} | {m['n']} | "
                + " | ".join(_fmt(m.get(k)) for k in CHART_KEYS)
                + f" | {_fmt(sum(m.get('skipped', {}).values()))} |"
            )
        lines += ["", f"Convention: {summary['convention']}", ""]
        for s, m in gen.items():
            for group in ("by_turn", "by_department"):
                if m.get(group):
                    lines += [
                        f"### {s} {group.replace('_', ' ')}",
                        "",
                        "| group | n | gleu | rougeL | bleu4 |",
                        "|---|---|---|---|---|",
                    ]
                    lines += [
                        f"| {g} | {v['n']} | {_fmt(v['gleu'])} | {_fmt(v['rougeL'])} | {_fmt(v['bleu4'])} |"
                        for g, v in m[group].items()
                    ]
                    lines.append("")
    if "cmmlu_med" in suites and "accuracy" in suites["cmmlu_med"]:
        m = suites["cmmlu_med"]
        lines += [
            "## cmmlu_med (option log-likelihood)",
            "",
            f"- accuracy (raw, summed log-prob): {_fmt(m['accuracy'])}",
            f"- accuracy_norm (per character): {_fmt(m['accuracy_norm'])}",
            f"- primary: {m['primary']}",
            f"- items: {m['n']}",
            "",
        ]
    if "preference" in suites and "reward_accuracy" in suites["preference"]:
        m = suites["preference"]
        lines += [
            "## Preference (held-out pairs)",
            "",
            f"- reward accuracy: {_fmt(m['reward_accuracy'])}",
            f"- reward margin: {m['reward_margin']:.4f} (beta {m['beta']})",
            f"- reference: {m['reference']}",
            f"- pairs: {m['n']}",
            "",
        ]
    if summary.get("unavailable"):
        lines += ["## Not run", ""] + [f"- {s}: {why}" for s, why in summary["unavailable"].items()] + [""]
    lines += [f"![{os.path.basename(c)}]({os.path.relpath(c, out_dir)})" for c in charts]
    return "\n".join(lines) + "\n"


def log_wandb(
    summary: dict[str, Any],
    rows_by_suite: dict[str, list[dict]],
    out_dir: str,
    project: str,
    entity: str | None,
    mode: str | None,
    charts: list[str],
    group: str | None = None,
) -> None:
    """Scores as ``eval/<suite>/<key>``, and one table per suite (prompt / reference / prediction / scores)."""
    import wandb

    run = wandb.init(
        project=project,
        entity=entity,
        mode=wandb_mode(mode),
        dir=out_dir,
        job_type="evaluate",
        group=group,
        config={"model": summary["model"], "adapter": summary.get("adapter"), "generation": summary["generation"]},
    )
    try:
        flat = {
            f"eval/{s}/{k}": v
            for s, m in summary["suites"].items()
            for k, v in m.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        run.log(flat)
        for suite, rows in rows_by_suite.items():
            if not rows or "prediction" not in rows[0]:
                continue
            keys = list(rows[0].get("scores", {}))
            table = wandb.Table(columns=["id", "prompt", "reference", "prediction", *keys])
            for r in rows:
                prompt = "\n".join(f"{m['role']}: {m['content']}" for m in r["prompt"])
                table.add_data(r["id"], prompt, r["reference"], r["prediction"], *[r["scores"][k] for k in keys])
            run.log({f"eval/{suite}/predictions": table})
        run.log({f"charts/{os.path.splitext(os.path.basename(c))[0]}": wandb.Image(c) for c in charts})
    finally:
        run.finish()
