"""Does a trained encoder score better at another evaluation resolution? (docs/speedrun.md)

The speedrun trains on 24 px crops and evaluates at CIFAR's native 32 px. FixRes (Touvron et al.
2019) finds the best test resolution above the training one; this measures weighted kNN (k = 200,
T = 0.1) with the 32 px images resized (bilinear; antialiased when shrinking) or centre-cropped to
each size. The choice is made on the training split only, so the test set is not tuned on: a fixed
random 5,000 of the 50,000 training images are queries, the other 45,000 the bank.

    python benchmarks/eval_resolution.py CHECKPOINT --data-root data [--sizes 24,28,32,36,40]

Run it alone on the machine (it takes about a minute per size at width 16 on 2 cores).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from siamkit.data import center_normalize, eval_batches
from siamkit.evaluate.api import load_eval_data
from siamkit.evaluate.encoders import load_encoder
from siamkit.evaluate.knn import knn_accuracy
from siamkit.precision import autocast, resolve_precision


@torch.no_grad()
def features(backbone, split, recipe: str, size: int, mode: str, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised features of ``split`` with its 32 px images brought to ``size`` by ``mode``
    ("resize" or "crop")."""
    out, labels = [], []
    for x, y in eval_batches(split, 512, "cpu", 0):
        x = center_normalize(x, recipe, x.shape[-1])
        if size != x.shape[-1] and mode == "crop":
            top = (x.shape[-1] - size) // 2
            x = x[..., top : top + size, top : top + size]
        elif size != x.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
        with autocast(precision, "cpu"):
            out.append(backbone(x.contiguous(memory_format=torch.channels_last)).float())
        labels.append(y)
    return F.normalize(torch.cat(out), dim=1), torch.cat(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--sizes", default="24,28,32,36,40")
    args = ap.parse_args()
    enc = load_encoder(args.checkpoint)
    data = load_eval_data("cifar10", args.data_root)
    backbone = enc.backbone.eval().to(memory_format=torch.channels_last)
    precision = resolve_precision("auto", torch.device("cpu"))
    perm = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    queries, bank = perm[:5000], perm[5000:]
    print("| evaluation size | how | validation kNN % |\n|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in ("resize", "crop") if size < data.size else ("resize",):
            f, y = features(backbone, data.train, enc.recipe or data.recipe, size, mode, precision)
            top1 = knn_accuracy(f[bank], y[bank], f[queries], y[queries], k=200, temperature=0.1)
            print(f"| {size} px | {'native' if size == data.size else mode} | {top1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
