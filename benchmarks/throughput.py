"""Training throughput of every registered method: data, batched augmentation, forward, backward,
optimizer and momentum update, measured as the pretraining loop runs them.

    python benchmarks/throughput.py --data-root DIR [--preset cpu] [--steps 12] [--epochs 3]

Each method pretrains ``--epochs`` short epochs of ``--steps`` steps on a fixed CIFAR-10 subset
(``data.train_subset = steps * batch``); the first epoch is warm-up, and the images per second
reported is the median over the remaining epochs (from each run's ``metrics.jsonl``). Run it on an
otherwise idle machine: the numbers are only comparable within one run of this script.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _timing import short_pretrain

from siamkit.config import build_config
from siamkit.methods import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    args = parser.parse_args()
    print(
        f"preset {args.preset}, {args.steps} steps x {args.epochs} epochs per method, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print("| method | views encoded per image | img/s (median) | relative to simsiam |")
    print("|---|---|---|---|")
    base = None
    batch = build_config({"data.data_root": args.data_root}, preset=args.preset).train.batch_size
    for name in args.methods:
        rows = short_pretrain(
            {
                "method.name": name,
                "data.dataset": "cifar10",
                "data.data_root": args.data_root,
                "data.train_subset": args.steps * batch,
                "train.epochs": args.epochs,
                "train.knn_every": 0,
                "train.knn_train_subset": 1000,
            },
            preset=args.preset,
        )
        rate = statistics.median(r["img_per_s"] for r in rows if r["epoch"] > 1)
        base = base or (rate if name == "simsiam" else None)
        rel = f"{rate / base:.2f}" if base else "-"
        print(f"| `{name}` | {METHODS[name].views_drawn} | {rate:.0f} | {rel} |", flush=True)


if __name__ == "__main__":
    main()
