"""Does a trained encoder score better at another evaluation resolution? (docs/speedrun.md)

The speedrun trains on 24 px crops and evaluates at CIFAR's native 32 px. FixRes (Touvron et al.
2019) finds the best test resolution above the training one; this measures weighted kNN (k = 200,
T = 0.1) with the 32 px images resized (bilinear; antialiased when shrinking) or centre-cropped to
each size. The choice is made on the training split only, so the test set is not tuned on: a fixed
stratified 5,000 of the 50,000 training images are queries, the other 45,000 the bank.

    python benchmarks/eval_resolution.py CHECKPOINT --data-root data [--sizes 24,28,32,36,40]

Run it alone on the machine (it takes about a minute per size at width 16 on 2 cores).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.evaluate.api import load_eval_data
from siamkit.evaluate.encoders import load_encoder
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.knn import knn_accuracy
from siamkit.evaluate.transfer import split_train_val
from siamkit.precision import resolve_precision


class Resized(nn.Module):
    """The backbone, fed the evaluation view brought to ``size`` px by ``mode`` ("resize" or "crop")."""

    def __init__(self, backbone: nn.Module, size: int, mode: str):
        super().__init__()
        self.backbone, self.size, self.mode = backbone, size, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[-1]
        if self.size != s and self.mode == "crop":
            top = (s - self.size) // 2
            x = x[..., top : top + self.size, top : top + self.size]
        elif self.size != s:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=self.size < s)
        return self.backbone(x.contiguous(memory_format=torch.channels_last))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--sizes", default="24,28,32,36,40")
    args = ap.parse_args()
    enc = load_encoder(args.checkpoint)
    data = load_eval_data("cifar10", args.data_root)
    backbone = enc.backbone.to(memory_format=torch.channels_last)
    precision = resolve_precision("auto", torch.device("cpu"))
    bank, queries = split_train_val(data.train.labels, val_fraction=0.1)  # stratified, fixed seed
    print("| evaluation size | how | validation kNN % |\n|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in ("resize", "crop") if size < data.size else ("resize",):
            net = Resized(backbone, size, mode)
            f, y = extract_features(net, data.train, enc.recipe or data.recipe, data.size, precision=precision)
            top1 = knn_accuracy(f[bank], y[bank], f[queries], y[queries], k=200, temperature=0.1)
            print(f"| {size} px | {'native' if size == data.size else mode} | {top1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
