"""Data: datasets (a registry) held as uint8 images, batch iteration, batched multi-view augmentation."""

from siamkit.data.augment import AugParams, MultiViewAugment, center_normalize
from siamkit.data.cache import cached_folder, scan_images
from siamkit.data.cifar import load_cifar
from siamkit.data.digits import load_digits
from siamkit.data.folders import Decoding, load_folder, load_imagefolder
from siamkit.data.imageset import ImageSet
from siamkit.data.loader import eval_batches, train_batches
from siamkit.data.multicrop import TrainingViews
from siamkit.data.recipes import Recipe, register_recipe
from siamkit.data.registry import (
    Dataset,
    load_datasets,
    load_eval_splits,
    loading_progress,
    monitor_splits,
    register_dataset,
)
from siamkit.errors import DataError
from siamkit.registry import DATASETS, RECIPES

__all__ = [
    "DATASETS",
    "RECIPES",
    "AugParams",
    "DataError",
    "Dataset",
    "Decoding",
    "ImageSet",
    "MultiViewAugment",
    "Recipe",
    "TrainingViews",
    "cached_folder",
    "center_normalize",
    "eval_batches",
    "load_cifar",
    "load_datasets",
    "load_digits",
    "load_eval_splits",
    "load_folder",
    "load_imagefolder",
    "loading_progress",
    "monitor_splits",
    "register_dataset",
    "register_recipe",
    "scan_images",
    "train_batches",
]
