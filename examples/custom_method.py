"""Add a method: SimSiam over three views, registered in one call and trained like any other.

    python examples/custom_method.py --epochs 2

A method is data (``siamkit.methods.MethodSpec``): a target, an objective, a number of views, a
predictor. Registering one makes ``--method NAME`` and every preset, evaluation and the experiment
suite accept it; the one generic step (``siamkit.train.step``) trains it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from siamkit import pretrain
from siamkit.config import build_config
from siamkit.methods import METHODS, MethodSpec, register_method


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--subset", type=int, default=None, help="train on this many digits (for tests)")
    args = parser.parse_args(argv)

    if "simsiam-3view" not in METHODS:
        register_method(MethodSpec("simsiam-3view", "stopgrad", "symmetric", views=3, paper="example"))

    values = {
        "method.name": "simsiam-3view",
        "model.width": args.width,
        "train.epochs": args.epochs,
        "train.precision": "fp32",
        "train.device": "cpu",
    }
    if args.subset is not None:
        values["data.train_subset"] = args.subset
    cfg = build_config(values, preset="digits")
    with tempfile.TemporaryDirectory() as out:
        row = pretrain(cfg, Path(out) / "run", progress=False)
    print(f"simsiam-3view after {row['epoch']} epochs: loss {row['loss']:+.4f}, kNN {row['knn_top1']:.1f}%")
    return row


if __name__ == "__main__":
    main()
