"""``evaluate=true``: score the run's final export on the evaluation suites and add a section to the report."""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig

from pedgpt.evaluation.run import evaluate_export
from pedgpt.stages.registry import get_stage

EVAL_KEYS = ("rouge1", "rougeL", "bleu4", "gleu", "distinct2", "accuracy", "reward_accuracy")


def evaluate_final(cfg: DictConfig, report: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Evaluate the last stage's export (reward accuracy against the SFT export when the run has one)."""
    final = report[cfg.pipeline[-1]]["export_dir"]
    overrides: dict[str, Any] = {"generation": {"max_new_tokens": int(cfg.eval_max_new_tokens)}}
    if "wandb" in cfg.logger.kinds:  # the evaluation run joins the training run's W&B group
        overrides["logger"] = {
            "wandb": True,
            "project": cfg.logger.project,
            "entity": cfg.logger.entity,
            "mode": cfg.logger.mode,
            "group": report.get("group"),
        }
    # reward accuracy of the aligned model against the model its preference stage started from (DFPO: SFT's export)
    starts = [get_stage(name).starts_from for name in cfg.pipeline]
    reference = next((s for s in starts if s and s in report and s != cfg.pipeline[-1]), None)
    if reference:
        overrides["preference"] = {"reference": report[reference]["export_dir"]}
    out_dir = os.path.join(run_dir, "evaluation")
    metrics = evaluate_export(final, list(cfg.eval_suites), cfg.data.root, out_dir, limit=cfg.eval_limit, **overrides)
    lines = [
        "## Evaluation of the final export",
        "",
        f"`{final}` — details in `evaluation/report.md`",
        "",
        "| suite | " + " | ".join(EVAL_KEYS) + " |",
        "|---" * (len(EVAL_KEYS) + 1) + "|",
    ]
    for suite, m in metrics.get("suites", {}).items():
        cells = [m.get(k) for k in EVAL_KEYS]
        lines.append(
            f"| {suite} | "
            + " | ".join("" if c is None else f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells)
            + " |"
        )
    report.setdefault("markdown_sections", []).append("\n".join(lines))
    return metrics
