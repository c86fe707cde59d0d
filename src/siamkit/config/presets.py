"""The named presets: each a set of config values and what it reproduces (``siamkit presets``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    reproduces: str
    values: dict[str, Any]


_GSG_CIFAR = {  # GSG section 5.1 and appendix C.2: every CIFAR-10 method uses this recipe
    "model.backbone": "resnet18_cifar",
    "data.dataset": "cifar10",
    "train.batch_size": 512,
    "train.epochs": 200,
    "optim.optimizer": "sgd",
    "optim.lr": 0.06,
    "optim.momentum": 0.9,
    "optim.weight_decay": 5e-4,
    "optim.schedule": "constant",
    "train.knn_k": 200,
}

_IMAGENET = {  # GSG section 5.1 and appendix C.1, following SimSiam's ImageNet setup
    "model.backbone": "resnet50",
    "data.dataset": "imagefolder",
    "data.recipe": "imagenet",
    "data.image_size": 224,
    "data.num_workers": 8,
    "train.batch_size": 512,
    "train.epochs": 100,
    "train.knn_every": 5,
    "optim.schedule": "cosine",
    "optim.weight_decay": 1e-4,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "gsg-cifar10",
            "GSG Table 1, CIFAR-10: ResNet-18 (CIFAR stem), batch 512, 200 epochs, SGD lr 0.06 constant, "
            "wd 5e-4 (any CIFAR method: simsiam, byol and their GSG versions)",
            {**_GSG_CIFAR, "train.precision": "fp32"},
        ),
        Preset(
            "gsg-imagenet",
            "GSG Table 1, ImageNet: ResNet-50, batch 512, 100 epochs, SGD lr 0.1 cosine, wd 1e-4, "
            "imagefolder at 224 px with the ImageNet recipe",
            {**_IMAGENET, "optim.lr": 0.1},
        ),
        Preset(
            "simsiam-imagenet",
            "SimSiam's own ImageNet recipe: lr 0.05 x batch/256, cosine, fixed predictor lr, wd 1e-4, "
            "batch 512, 100 epochs",
            {
                **_IMAGENET,
                "optim.lr": 0.05,
                "optim.lr_scaling": "linear",
                "optim.fixed_predictor_lr": True,
            },
        ),
        Preset(
            "cpu",
            "CPU scale (siamkit's): ResNet-10 (CIFAR stem) width 32, batch 256, CIFAR-10, GSG's "
            "optimizer settings, bf16 where the CPU computes it natively (else fp32); for 2-core machines",
            {
                **_GSG_CIFAR,
                "model.backbone": "resnet10_cifar",
                "model.width": 32,
                "train.batch_size": 256,
                "train.epochs": 10,
                "train.precision": "auto",
            },
        ),
        Preset(
            "speedrun",
            "siamkit's CPU speedrun: the cpu preset at width 16, batch 128, channels_last, for 60 minutes of training "
            "(--time-budget) with the cosine lr over the budget, crops of at least 0.2 of the image "
            "resized to 24 px (evaluation at 32), a 512-wide projector, kNN on the full training split at the end "
            "(docs/speedrun.md)",
            {
                **_GSG_CIFAR,
                "model.backbone": "resnet10_cifar",
                "model.width": 16,
                "train.batch_size": 128,
                "optim.schedule": "cosine",  # +4.1 kNN points over constant at 60 minutes (docs/speedrun.md)
                "data.crop_min_scale": 0.2,  # +2.0 kNN points over the recipe's 0.08 at 60 minutes
                "data.train_size": 24,  # 24 px crops, evaluation at 32: +2.6 kNN at the reference's 60 minutes
                "model.proj_dim": 512,  # a 512-wide head: 1.27x the updates, +2.1 kNN points at 60 minutes
                "model.proj_hidden": 512,
                "model.pred_hidden": 128,
                "train.epochs": 1000,
                "train.time_budget": 3600.0,
                "train.precision": "auto",
                "train.channels_last": True,
                "train.knn_every": 0,
            },
        ),
        Preset(
            "digits",
            "the demo: embedded digits at 16 px, ResNet-10 width 16, batch 64, 60 epochs, lr 0.06 cosine, "
            "precision auto",
            {
                "data.dataset": "digits",
                "data.image_size": 16,  # the digits are 8x8: 16 px keeps them and trains ~4x faster than 32
                "model.backbone": "resnet10_cifar",
                "model.width": 16,
                "model.proj_dim": 512,
                "model.proj_hidden": 512,
                "model.pred_hidden": 128,
                "train.batch_size": 64,
                "train.epochs": 60,
                "train.precision": "auto",
                "train.knn_every": 10,
                "train.knn_k": 20,  # 1,347 training images: k = 200 would span more than a class
                "optim.lr": 0.06,
                "optim.schedule": "cosine",
                "optim.weight_decay": 5e-4,
            },
        ),
    )
}


def presets_table() -> str:
    width = max(len(p) for p in PRESETS)
    return "\n".join(f"{p.name.ljust(width)}  {p.reproduces}" for p in PRESETS.values())
