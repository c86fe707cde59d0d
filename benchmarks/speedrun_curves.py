"""Accuracy against minutes of training (docs/speedrun.md): the kNN monitor's records of budget runs,
plotted on one axis of trained minutes (evaluation time excluded, as the budget excludes it).

    python benchmarks/speedrun_curves.py docs/speedrun/curves.png docs/speedrun/runs/curve-*
    python benchmarks/speedrun_curves.py --ratio 1.78 docs/speedrun/curves-zen5.png docs/speedrun/runs/zen5-*

Each run is one line labelled by its folder name; its epoch-0 point is the random initialisation.
``--ratio R`` plots reference-machine minutes: the runs' machine did R times the reference's
training steps per second (the `cpu` preset's step, measured), so a minute there is R minutes
of the reference's.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from siamkit.runs import RunFolder


def curve(run: Path, ratio: float = 1.0) -> tuple[list[float], list[float]]:
    rows = [r for r in RunFolder(run).read_metrics() if "knn_top1" in r]
    return [r.get("trained_seconds", 0.0) / 60 * ratio for r in rows], [r["knn_top1"] for r in rows]


def plot_curves(
    png: str | Path,
    curves: dict[str, tuple[list[float], list[float]]],
    title: str,
    bank: str,
    xlabel: str = "minutes of training (evaluation not counted)",
) -> None:
    """One line per ``name: (minutes, kNN %)``, labelled with its last value, written to ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, marker="o", markersize=3, label=f"{name} ({y[-1]:.1f} %)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"weighted kNN top-1 % (k=200, {bank} bank)")
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="kNN monitor curves of budget runs against minutes of training")
    parser.add_argument("png", help="the plot to write")
    parser.add_argument("runs", nargs="+", help="run folders (with metrics.jsonl)")
    parser.add_argument("--ratio", type=float, default=1.0, help="the runs' machine's step speed over the reference's")
    args = parser.parse_args(argv)
    if args.ratio <= 0:
        parser.error(f"--ratio must be > 0, got {args.ratio}")
    curves = {run.name: curve(run, args.ratio) for run in map(Path, args.runs)}
    scaled = {"xlabel": f"reference-machine minutes of training (this machine's x {args.ratio:g})"}
    plot_curves(
        args.png, curves, "SimSiam on CIFAR-10 (JPEG copy), 2 CPU cores", "10k", **(scaled if args.ratio != 1.0 else {})
    )
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main(sys.argv[1:])
