"""Accuracy against minutes of training (docs/speedrun.md): the kNN monitor's records of budget runs,
plotted on one axis of trained minutes (evaluation time excluded, as the budget excludes it).

    python benchmarks/speedrun_curves.py docs/speedrun/curves.png docs/speedrun/runs/curve-*

Each run is one line labelled by its folder name; its epoch-0 point is the random initialisation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from siamkit.runs import RunFolder


def curve(run: Path) -> tuple[list[float], list[float]]:
    rows = [r for r in RunFolder(run).read_metrics() if "knn_top1" in r]
    return [r.get("trained_seconds", 0.0) / 60 for r in rows], [r["knn_top1"] for r in rows]


def main(png: str, runs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in map(Path, runs):
        x, y = curve(run)
        ax.plot(x, y, marker="o", markersize=3, label=f"{run.name} ({y[-1]:.1f} %)")
    ax.set_xlabel("minutes of training (evaluation not counted)")
    ax.set_ylabel("weighted kNN top-1 % (k=200, 10k bank)")
    ax.set_title("SimSiam on CIFAR-10 (JPEG copy), 2 CPU cores")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
