"""Does re-estimating BatchNorm statistics at the evaluation resolution help? (docs/speedrun.md)

The speedrun trains on 24 px augmented crops and evaluates clean 32 px images, so the backbone's
BatchNorm running statistics come from another input distribution than the one evaluated. FixRes
(Touvron et al. 2019) and AdaBN (Li et al. 2016) re-estimate them on the evaluation distribution.
This re-estimates every BatchNorm layer's statistics of a trained backbone from scratch (a
cumulative average, no gradients, no labels) on the training images, either clean at 32 px or
through the recipe's augmentation at 32 px, and measures each encoder with the full protocol:
weighted kNN (k = 200, T = 0.1, 50k bank) and the 90-epoch linear probe.

    python benchmarks/bn_recalibration.py CHECKPOINT --data-root data [--out FILE.jsonl]

Run it alone on the machine (about 6 minutes for a width-16 encoder on a 2-vCPU Zen 3).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from siamkit.data import MultiViewAugment, center_normalize
from siamkit.evaluate.api import knn, linear, load_eval_data
from siamkit.evaluate.encoders import load_encoder
from siamkit.registry import RECIPES


def recalibrated(backbone: nn.Module, batches: Iterator[Tensor]) -> nn.Module:
    """A copy of ``backbone`` whose BatchNorm running statistics are the cumulative average over
    ``batches`` (train-mode forwards under ``no_grad``); the weights are untouched."""
    net = copy.deepcopy(backbone)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over every batch
    net.train()
    with torch.no_grad():
        for x in batches:
            net(x)
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--batch-size", type=int, default=128, help="images per recalibration batch (the training batch)")
    ap.add_argument("--out", help="append one JSON line per variant to this file")
    args = ap.parse_args()

    enc = load_encoder(args.checkpoint)
    data = load_eval_data("cifar10", args.data_root)
    recipe = RECIPES[enc.recipe or data.recipe]
    scale = enc.config.data.crop_min_scale if enc.config is not None else None
    images = data.train.images  # (N, 3, 32, 32) uint8
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    chunks = [order[i : i + args.batch_size] for i in range(0, len(images) - args.batch_size + 1, args.batch_size)]
    g = torch.Generator().manual_seed(0)
    augment = MultiViewAugment(
        dataclasses.replace(recipe, crop_scale=(scale, 1.0)) if scale is not None else recipe, data.size, False
    )
    variants = {
        "as trained": None,
        "recalibrated on clean 32 px images": lambda: (center_normalize(images[c], recipe, data.size) for c in chunks),
        "recalibrated on augmented 32 px crops": lambda: (augment(images[c], views=1, g=g)[0] for c in chunks),
    }
    for name, batches in variants.items():
        t0 = time.perf_counter()
        e = enc if batches is None else dataclasses.replace(enc, backbone=recalibrated(enc.backbone, batches()))
        recal_s = time.perf_counter() - t0
        row = {
            "checkpoint": args.checkpoint,
            "variant": name,
            "recalibration_s": round(recal_s, 1),
            "knn": knn(e, data, k=200, weighted=True, temperature=0.1).top1,
            "linear": linear(e, data).top1,
        }
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
