"""A tasks × experts heat-map of mean router weights (PNG), for reports and W&B."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def router_heatmap(weights: dict[str, list[float]], path: str) -> str:
    """Tasks × experts heat-map PNG of mean router weights."""
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
