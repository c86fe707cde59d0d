"""The linear probe: a linear classifier on the frozen backbone.

CIFAR protocol (GSG appendix D / MoCo): 90 epochs, batch 256, SGD momentum 0.9, lr 30, cosine
decay, no weight decay, on the backbone's pooled features with the backbone in eval mode. Without
augmentation the features are extracted once, so 90 epochs take seconds on a CPU; with
``augment`` every epoch goes through the frozen backbone with random crops and flips. The ImageNet
variant uses LARS (lr 0.1 x batch/256, batch 4096).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from siamkit.data import RECIPES, MultiViewAugment, train_batches
from siamkit.precision import autocast
from siamkit.schedules import cosine
from siamkit.train.optim import LARS


@dataclass(frozen=True)
class ProbeConfig:
    epochs: int = 90
    batch_size: int = 256
    lr: float = 30.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = "sgd"  # "lars": the ImageNet variant
    seed: int = 0


PROBE_PRESETS = {
    "cifar": ProbeConfig(),  # GSG / MoCo CIFAR protocol
    "imagenet": ProbeConfig(batch_size=4096, lr=0.1 * 4096 / 256, optimizer="lars"),  # SimSiam's LARS probe
}


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    head = nn.Linear(dim, num_classes)
    nn.init.normal_(head.weight, std=0.01)  # as the SimSiam/MoCo probe code
    nn.init.zeros_(head.bias)
    return head


def _optimizer(head: nn.Linear, cfg: ProbeConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "lars":
        return LARS(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    return torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_probe(batches, dim: int, num_classes: int, cfg: ProbeConfig, device="cpu", progress=None) -> nn.Linear:
    """Train a linear head; ``batches(epoch, generator)`` yields ``(features, labels)``.
    The learning rate follows ``lr * 0.5 * (1 + cos(pi * epoch / epochs))`` per epoch (SimSiam's
    ``adjust_learning_rate``)."""
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = _classifier(dim, num_classes).to(device)
    opt = _optimizer(head, cfg)
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cosine(epoch / cfg.epochs)
        for x, y in batches(epoch, g):
            loss = F.cross_entropy(head(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1)
    return head


def feature_batches(features: Tensor, labels: Tensor, batch_size: int):
    """Shuffled mini-batches of pre-extracted features, one epoch per call."""

    def batches(epoch: int, g: torch.Generator):
        order = torch.randperm(len(features), generator=g).to(features.device)
        for start in range(0, len(features), batch_size):
            idx = order[start : start + batch_size]
            yield features[idx], labels[idx]

    return batches


@torch.no_grad()
def accuracy(head: nn.Linear, features: Tensor, labels: Tensor, topk=(1, 5)) -> dict[str, float]:
    logits = head(features)
    out = {}
    for k in topk:
        k_eff = min(k, logits.shape[1])
        hit = (logits.topk(k_eff, dim=1).indices == labels[:, None]).any(1)
        out[f"top{k}"] = 100.0 * hit.float().mean().item()
    return out


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    cfg: ProbeConfig = PROBE_PRESETS["cifar"],
    progress=None,
) -> dict[str, float]:
    """Linear probe on pre-extracted (un-normalised) features: ``{"top1", "top5", "seconds"}``."""
    t0 = time.perf_counter()
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    head = train_probe(
        feature_batches(train_features, train_labels, cfg.batch_size),
        train_features.shape[1],
        num_classes,
        cfg,
        train_features.device,
        progress,
    )
    return {**accuracy(head, test_features, test_labels), "seconds": time.perf_counter() - t0}


def linear_probe_augmented(
    backbone: nn.Module,
    train_set,
    test_features: Tensor,
    test_labels: Tensor,
    recipe: str,
    size: int,
    cfg: ProbeConfig = PROBE_PRESETS["cifar"],
    device="cpu",
    precision: str = "fp32",
    progress=None,
) -> dict[str, float]:
    """Linear probe trained through the frozen backbone (eval mode, no gradients) on random crops
    and flips of the training images, every epoch anew; tested on the centre view's features."""
    base = RECIPES[recipe]
    probe = dataclasses.replace(
        base, name="probe", crop_scale=(0.08, 1.0), flip_p=0.5, jitter_p=0.0, gray_p=0.0, blur_p=0.0
    )
    aug = MultiViewAugment(probe, size, channels_last=False)
    was_training = backbone.training
    backbone.eval()

    def batches(epoch: int, g: torch.Generator):
        for x, y in train_batches(train_set, cfg.batch_size, epoch, cfg.seed, device=device, with_labels=True):
            with torch.no_grad(), autocast(precision, device):
                f = backbone(aug(x, views=1, g=g)[0])
            yield f.float(), y

    t0 = time.perf_counter()
    try:
        num_classes = len(train_set.classes)
        head = train_probe(batches, test_features.shape[1], num_classes, cfg, device, progress)
    finally:
        backbone.train(was_training)
    return {**accuracy(head, test_features, test_labels), "seconds": time.perf_counter() - t0}
