"""One epoch of every registered method through the CLI, and the table and plot of the results.

    python benchmarks/methods_epoch.py --data-root DIR --runs RUNS [--preset cpu] [--epochs 1]

Runs ``siamkit pretrain --preset PRESET --method M --dataset cifar10 --data-root DIR --epochs N
--out RUNS/M --quiet`` for each method (a finished run is skipped, so the script can be re-run
after an interruption), then writes ``docs/methods_epoch.md`` and ``docs/methods_epoch.png``
from the runs' ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from siamkit.methods import METHODS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_all(data_root: str, runs: Path, preset: str, epochs: int) -> None:
    for name in METHODS:
        out = runs / name
        metrics = out / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            continue
        cmd = [
            sys.executable,
            "-m",
            "siamkit",
            "pretrain",
            "--preset",
            preset,
            "--method",
            name,
            "--dataset",
            "cifar10",
            "--data-root",
            data_root,
            "--epochs",
            str(epochs),
            "--out",
            str(out),
            "--quiet",
        ]
        if (out / "checkpoint.pt").exists():
            cmd.append("--resume")
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)


def report(runs: Path, preset: str, epochs: int) -> str:
    rows = []
    for name, spec in METHODS.items():
        path = runs / name / "metrics.jsonl"
        if not path.exists():
            continue
        last = json.loads(path.read_text().splitlines()[-1])
        rows.append((name, spec.views_drawn, last))
    base = next((r[2]["img_per_s"] for r in rows if r[0] == "simsiam"), None)
    lines = [
        f"# One epoch of every method on CIFAR-10 (JPEG copy), preset `{preset}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}. Produced by:",
        "",
        f"    python benchmarks/methods_epoch.py --data-root DIR --runs RUNS --preset {preset} --epochs {epochs}",
        "",
        "Images per second count training images (each encoded `views` times) over the whole epoch:",
        "data, batched augmentation, forward, backward, optimizer and momentum update. kNN is the",
        "monitor after this single epoch (weighted k = 200, T = 0.1, and 1-NN, on the 10,000 test",
        "images with the 50,000 training images as the bank): it says the run learned, not how",
        "well a method does after full training.",
        "",
        "| method | views encoded per image | img/s | relative to simsiam | epoch (s) | loss | z_std | kNN | 1-NN |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, views, r in rows:
        rel = f"{r['img_per_s'] / base:.2f}" if base else "-"
        lines.append(
            f"| `{name}` | {views} | {r['img_per_s']:.0f} | {rel} | {r['seconds']:.0f} | {r['loss']:+.3f} | "
            f"{r['z_std']:.4f} | {r.get('knn_top1', float('nan')):.1f} | {r.get('knn1_top1', float('nan')):.1f} |"
        )
    lines += ["", "![images per second per method](methods_epoch.png)", ""]
    _plot(rows, DOCS / "methods_epoch.png", preset)
    return "\n".join(lines)


def _plot(rows, path: Path, preset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[0] for r in rows]
    rates = [r[2]["img_per_s"] for r in rows]
    colors = ["tab:blue" if r[1] == 2 else "tab:orange" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh(names[::-1], rates[::-1], color=colors[::-1])
    ax.set_xlabel("training images per second (whole epoch)")
    ax.set_title(f"Throughput per method, CIFAR-10, preset '{preset}' (blue: 2 views, orange: 4)")
    for y, v in enumerate(rates[::-1]):
        ax.text(v, y, f" {v:.0f}", va="center", fontsize=8)
    ax.set_xlim(0, max(rates) * 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--runs", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="only rebuild the table and plot")
    args = parser.parse_args()
    if not args.report_only:
        run_all(args.data_root, args.runs, args.preset, args.epochs)
    DOCS.mkdir(exist_ok=True)
    (DOCS / "methods_epoch.md").write_text(report(args.runs, args.preset, args.epochs))
    print(f"wrote {DOCS / 'methods_epoch.md'}")


if __name__ == "__main__":
    main()
