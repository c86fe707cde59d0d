"""Fine-tuning: the whole backbone and a linear classifier trained together with labels.

The protocol follows SimCLR's fine-tuning (Chen et al. 2020, appendix B.5: only random crops with
resize and horizontal flips, Nesterov momentum, no weight decay), scaled to a CPU: SGD with
Nesterov momentum 0.9, batch 256, learning rate 0.05 x batch/256 with a cosine decay per step,
30 epochs (SimCLR's number for 10 % of the labels). BatchNorm trains on the fine-tuning batches.
The encoder being evaluated is left untouched: a copy is trained.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.data import RECIPES, ImageSet, MultiViewAugment, eval_batches
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.linear import _classifier, accuracy
from siamkit.precision import autocast
from siamkit.schedules import cosine


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 30  # SimCLR B.5: 30 epochs with 10 % of the labels (60 with 1 %)
    batch_size: int = 256
    lr: float = 0.05  # x batch/256
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0  # SimCLR B.5: no regularisation when fine-tuning
    seed: int = 0


def _batches(data: ImageSet, batch_size: int, g: torch.Generator, device):
    """Shuffled ``(images, labels)`` batches of one epoch; the last one is kept unless it has a
    single image (BatchNorm needs two)."""
    order = torch.randperm(len(data), generator=g)
    for start in range(0, len(data), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:
            break
        yield next(eval_batches(data.take(idx), len(idx), device))


def finetune(
    backbone: nn.Module,
    train_set: ImageSet,
    test_set: ImageSet,
    recipe: str,
    size: int,
    cfg: FinetuneConfig = FinetuneConfig(),
    device="cpu",
    precision: str = "fp32",
    progress=None,
) -> dict[str, float]:
    """Fine-tune a copy of ``backbone`` with a new linear head on ``train_set`` (random crops and
    flips), then test it on ``test_set``'s centre views: ``{"top1", "top5", "seconds"}``.
    ``progress(epoch)`` is called after every epoch."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    net = copy.deepcopy(backbone).to(device)
    dim = extract_features(net, train_set.take(range(2)), recipe, size, device, normalize=False)[0].shape[1]
    head = _classifier(dim, len(train_set.classes)).to(device)
    model = nn.Sequential(net, head)
    lr = cfg.lr * cfg.batch_size / 256
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    crops = dataclasses.replace(
        RECIPES[recipe], name="finetune", crop_scale=(0.08, 1.0), flip_p=0.5, jitter_p=0.0, gray_p=0.0, blur_p=0.0
    )
    aug = MultiViewAugment(crops, size, channels_last=False)
    steps = cfg.epochs * -(-len(train_set) // cfg.batch_size)
    step = 0
    model.train()
    for epoch in range(cfg.epochs):
        for x, y in _batches(train_set, cfg.batch_size, g, device):
            for group in opt.param_groups:
                group["lr"] = lr * cosine(step / steps)
            with autocast(precision, device):
                logits = model(aug(x, views=1, g=g)[0])
            loss = F.cross_entropy(logits.float(), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if progress is not None:
            progress(epoch + 1)
    f_test, y_test = extract_features(net, test_set, recipe, size, device, precision=precision, normalize=False)
    with torch.no_grad():
        out = accuracy(head, f_test, y_test)
    return {**out, "seconds": time.perf_counter() - t0}
