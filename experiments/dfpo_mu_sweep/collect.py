"""Collect the DFPO μ sweep: one row per job of the multirun, a Markdown table and a trade-off plot.

    python experiments/dfpo_mu_sweep/collect.py SWEEP_DIR [--out DIR]

Reads ``SWEEP_DIR/<job num>/report.json`` (the pipeline report) and ``.hydra/config.yaml`` (for μ and β) of
every job; writes ``results.json``, ``results.md`` and ``reward_acc_vs_sft_loss.png`` to ``--out``
(default: SWEEP_DIR). The held-out SFT loss is ``val_following_nll``: the mean over held-out pairs of
the chosen answer's mean-token NLL under the trained policy.
"""

from __future__ import annotations

import argparse
import json
import os

from omegaconf import OmegaConf

COLUMNS = (
    "mu",
    "val_reward_accuracy",
    "val_reward_margin",
    "val_following_nll",
    "val_pairs",
    "train_loss_last",
    "steps",
)


def collect(sweep_dir: str) -> list[dict]:
    rows = []
    for job in sorted(os.listdir(sweep_dir), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
        report = os.path.join(sweep_dir, job, "report.json")
        if not os.path.exists(report):
            continue
        cfg = OmegaConf.load(os.path.join(sweep_dir, job, ".hydra", "config.yaml"))
        dfpo = json.load(open(report))["dfpo"]
        rows.append(
            {
                "job": job,
                "mu": float(cfg.dfpo.mu),
                "beta": float(cfg.dfpo.beta),
                **{k: dfpo.get(k) for k in COLUMNS if k != "mu"},
            }
        )
    if not rows:
        raise FileNotFoundError(f"{sweep_dir}: no <job>/report.json (run experiments/dfpo_mu_sweep/run.sh first)")
    return sorted(rows, key=lambda r: r["mu"])


def markdown(rows: list[dict]) -> str:
    head = "| μ | held-out reward accuracy | held-out reward margin | held-out SFT loss (val_following_nll) | pairs |"
    lines = [head, "|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {r['mu']:g} | {r['val_reward_accuracy']:.4f} | {r['val_reward_margin']:.4f} | "
        f"{r['val_following_nll']:.4f} | {r['val_pairs']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    x = [r["val_following_nll"] for r in rows]
    y = [r["val_reward_accuracy"] for r in rows]
    ax.plot(x, y, "o-", color="tab:blue")
    for i, (r, xi, yi) in enumerate(zip(rows, x, y)):  # staggered labels: neighbouring points may nearly coincide
        ax.annotate(f"μ={r['mu']:g}", (xi, yi), textcoords="offset points", xytext=(4, -14 - 10 * (i % 3)), fontsize=8)
    ax.set_ylim(min(0.45, min(y) - 0.05), 1.03)
    ax.set_xlabel("held-out SFT loss (chosen-answer NLL, nats/token)")
    ax.set_ylabel("held-out reward accuracy")
    ax.set_title(f"DFPO μ sweep (β={rows[0]['beta']:g})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--out", default=None, help="where results.* and the plot go (default: SWEEP_DIR)")
    a = ap.parse_args()
    out = a.out or a.sweep_dir
    os.makedirs(out, exist_ok=True)
    rows = collect(a.sweep_dir)
    table = markdown(rows)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table)
    png = plot(rows, os.path.join(out, "reward_acc_vs_sft_loss.png"))
    print(table + f"\nplot: {png}")


if __name__ == "__main__":
    main()
