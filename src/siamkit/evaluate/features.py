"""Frozen-backbone features: eval mode, no gradients, evaluation view, L2-normalised on request."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from siamkit.data import ImageSet, center_normalize, eval_batches
from siamkit.precision import autocast


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    data: ImageSet,
    recipe: str,
    size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    precision: str = "fp32",
    channels_last: bool = False,
    normalize: bool = True,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(N, F)`` float32 features of every image of ``data`` (in order) and its ``(N,)`` labels.

    The backbone is put in eval mode (BatchNorm uses its running statistics) and restored to its
    previous mode afterwards; no parameter or buffer changes.
    """
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    try:
        batches = eval_batches(data, batch_size, device, num_workers)
        total = -(-len(data) // batch_size)
        for x, y in tqdm(batches, total=total, desc=f"features {data.name}", leave=False, disable=not progress,
                         file=sys.stderr):  # fmt: skip
            x = center_normalize(x, recipe, size)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(precision, device):
                f = backbone(x)
            feats.append(f.float())
            labels.append(y)
    finally:
        backbone.train(was_training)
    out = torch.cat(feats)
    return (F.normalize(out, dim=1) if normalize else out), torch.cat(labels).to(out.device)
