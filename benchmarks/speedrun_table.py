"""The speedrun ablation's table (docs/speedrun.md) from its run folders.

    python benchmarks/speedrun_table.py runs/speedrun-ablation

Each row: the run, its kNN at the end of its time budget, the random-init kNN where the run
measured it (epoch 0), the training images per second and the seconds one CIFAR-10 epoch
(50,000 images) costs at that rate, the epochs and updates the budget bought.
"""

from __future__ import annotations

import sys
from pathlib import Path

from siamkit.runs import RunFolder


def row(run: Path) -> str:
    folder = RunFolder(run)
    metrics = folder.read_metrics()
    info = folder.read_info()
    trained = [r for r in metrics if r["epoch"] > 0]
    last = trained[-1]
    init = next((r.get("knn_top1") for r in metrics if r["epoch"] == 0), None)
    images = sum(r["img_per_s"] * r["seconds"] for r in trained)
    rate = images / sum(r["seconds"] for r in trained)
    epochs = images / info["train_images"]
    init_text = f"{init:.2f}" if init is not None else ""
    return (
        f"| {run.name} | {last['knn_top1']:.2f} | {init_text} | {rate:.0f} | {50_000 / rate:.0f} | "
        f"{epochs:.2f} | {last['step']} | {last['trained_seconds']:.0f} |"
    )


def main(root: str) -> None:
    print("| run | kNN % at budget | random-init kNN % | img/s | s per epoch | epochs | updates | trained s |")
    print("|---|---|---|---|---|---|---|---|")
    for run in sorted(p for p in Path(root).iterdir() if (p / "metrics.jsonl").exists()):
        print(row(run))


if __name__ == "__main__":
    main(sys.argv[1])
