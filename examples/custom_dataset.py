"""Add a dataset: images you already hold in memory, registered under a name, then pretrained on.

    python examples/custom_dataset.py --epochs 2

A dataset entry loads a train and a held-out split as ``ImageSet`` (square RGB uint8 images and
labels); ``--dataset NAME`` then works for pretraining, the kNN monitor and ``siamkit eval``. Here
the splits are scikit-learn's digits turned upside down: any array of images works the same way.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from siamkit import pretrain
from siamkit.config import DataConfig, build_config
from siamkit.data import DATASETS, Dataset, ImageSet, load_digits, register_dataset


def flipped_digits(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Both splits of the digits, each image upside down; ``cfg`` carries the decode size."""
    splits = []
    for split in ("train", "test"):
        d = load_digits(split, cfg.decode_size())
        images = d.images.flip(-2).contiguous()  # (N, 3, S, S) uint8
        splits.append(ImageSet(f"flipped-digits/{split}", d.classes, d.labels, d.size, images=images))
    return splits[0], splits[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--subset", type=int, default=None, help="train on this many images (for tests)")
    args = parser.parse_args(argv)

    if "flipped-digits" not in DATASETS:
        register_dataset(Dataset("flipped-digits", flipped_digits, needs_root=False, recipe="digits"))

    values = {
        "data.dataset": "flipped-digits",
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
    print(f"flipped-digits after {row['epoch']} epochs: kNN {row['knn_top1']:.1f}%")
    return row


if __name__ == "__main__":
    main()
