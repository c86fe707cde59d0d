"""Augmentation recipes: the papers' torchvision pipelines as data (GSG appendix B)."""

from __future__ import annotations

from dataclasses import dataclass

from siamkit.registry import RECIPES

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # GSG appendix B: normalisation for both recipes
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Recipe:
    """One augmentation pipeline, in the order CIFAR: crop, flip, jitter, grayscale;
    ImageNet: crop, jitter, grayscale, blur, flip (flip commutes with the rest, so it is fused
    into the crop)."""

    name: str
    size: int
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    note: str = ""


def register_recipe(recipe: Recipe, replace: bool = False) -> Recipe:
    """Add ``recipe`` to the registry (``--set data.recipe=NAME``)."""
    return RECIPES.register(recipe.name, recipe, replace=replace)


for _r in (
    Recipe("cifar", 32, (0.08, 1.0), note="GSG appendix B.2 (CIFAR-10)"),
    Recipe("imagenet", 224, (0.2, 1.0), blur_p=0.5, note="GSG appendix B.1 (ImageNet), SimSiam's recipe"),
    Recipe(
        "digits",
        32,
        (0.5, 1.0),
        flip_p=0.0,
        jitter_p=0.0,
        gray_p=0.0,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        note="siamkit's: crops only (no flips, no colour ops)",
    ),
):
    register_recipe(_r)
