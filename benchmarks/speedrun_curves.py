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


def plot_curves(png: str | Path, curves: dict[str, tuple[list[float], list[float]]], title: str, bank: str) -> None:
    """One line per ``name: (minutes, kNN %)``, labelled with its last value, written to ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, marker="o", markersize=3, label=f"{name} ({y[-1]:.1f} %)")
    ax.set_xlabel("minutes of training (evaluation not counted)")
    ax.set_ylabel(f"weighted kNN top-1 % (k=200, {bank} bank)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main(png: str, runs: list[str]) -> None:
    curves = {run.name: curve(run) for run in map(Path, runs)}
    plot_curves(png, curves, "SimSiam on CIFAR-10 (JPEG copy), 2 CPU cores", "10k")
    print(f"wrote {png}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
