"""Add a backbone: a small plain CNN, registered with its feature dimension, then pretrained.

    python examples/custom_backbone.py --epochs 2

A backbone entry says how to build the module for a width and how many features it returns; the
projector is sized from that, so ``--backbone NAME`` works with every method and evaluation.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from torch import nn

from siamkit import pretrain
from siamkit.config import build_config
from siamkit.models import BACKBONES, Backbone, register_backbone


def small_cnn(width: int | None) -> nn.Module:
    """(B, 3, H, W) -> (B, 4 * width): three conv stages and global average pooling."""
    w = width if width is not None else 16
    layers, c_in = [], 3
    for c_out in (w, 2 * w, 4 * w):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--subset", type=int, default=None, help="train on this many digits (for tests)")
    args = parser.parse_args(argv)

    if "small_cnn" not in BACKBONES:
        register_backbone(
            Backbone(
                "small_cnn",
                build=small_cnn,
                feature_dim=lambda w: 4 * (w if w is not None else 16),
                default_width=16,
                note="examples/custom_backbone.py",
            )
        )

    values = {
        "method.name": "simsiam",
        "model.backbone": "small_cnn",
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
    print(f"small_cnn ({4 * args.width}-d) after {row['epoch']} epochs: kNN {row['knn_top1']:.1f}%")
    return row


if __name__ == "__main__":
    main()
