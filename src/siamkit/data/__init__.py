"""Data: datasets held as uint8 images, batch iteration, batched multi-view augmentation."""

from siamkit.data.augment import RECIPES, AugParams, MultiViewAugment, Recipe, center_normalize
from siamkit.data.datasets import (
    DATASETS,
    DataError,
    ImageSet,
    load_cifar,
    load_datasets,
    load_digits,
    load_imagefolder,
)
from siamkit.data.loader import eval_batches, train_batches

__all__ = [
    "DATASETS",
    "RECIPES",
    "AugParams",
    "DataError",
    "ImageSet",
    "MultiViewAugment",
    "Recipe",
    "center_normalize",
    "eval_batches",
    "load_cifar",
    "load_datasets",
    "load_digits",
    "load_imagefolder",
    "train_batches",
]
