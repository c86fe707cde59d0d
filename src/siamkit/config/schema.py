"""The five config sections as frozen dataclasses.

Every numeric field declares its range in its metadata (:func:`~siamkit.config.fields.num`);
:func:`~siamkit.config.fields.check_section` enforces it for every section alike: numbers must be
finite, integers and floats must lie in their range, choices must be among the listed ones, and
names must be registered (:mod:`siamkit.registry`). A section that fails raises
:class:`ConfigError` naming the key; rules between keys follow in each section's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from siamkit.config.fields import check_section, choice, num
from siamkit.errors import ConfigError
from siamkit.precision import PRECISIONS, resolve_precision
from siamkit.registry import BACKBONES, DATASETS, METHODS, RECIPES, check_spec
from siamkit.schedules import ramp_size

OPTIMIZERS = ("sgd", "lars")
LR_SCHEDULES = ("constant", "cosine")
LR_SCALINGS = ("none", "linear")
TAU_SCHEDULES = ("constant", "cosine")
BN_MODES = ("per_view", "joint")
PROJ_DIM = 2048  # GSG appendix C.1/C.2: projector width 2048, predictor bottleneck 512
PRED_HIDDEN = 512
PROGRESSIVE_UNTIL = 0.5  # progressive resolution reaches the training size halfway through by default
LOCAL_SCALE = (0.05, 0.4)  # multi-crop's small crops: DINO's default area range (Caron et al. 2021)
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class MethodConfig:
    """The method by registry name, and overrides of its spec (``None``: the method's default)."""

    name: str = choice("simsiam", METHODS)
    views: int | None = num(None, 2)
    predictor: bool | None = None
    shared_views: bool | None = None
    leave_one_out: bool | None = None
    tau: float | None = num(None, 0.0, 1.0)
    tau_schedule: str | None = choice(None, TAU_SCHEDULES)

    def __post_init__(self) -> None:
        check_section("method", self)
        self.spec()  # the combination must make a valid method

    def spec(self):
        """The registered :class:`~siamkit.methods.MethodSpec` with this section's overrides."""
        overrides = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        try:
            return METHODS.get(self.name).resolve(**overrides)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; saved with every checkpoint.

    ``proj_layers=None`` follows the backbone: 2 for small-image (CIFAR) stems (GSG C.2), 3 for
    ImageNet stems (C.1). ``bn`` is how BatchNorm sees the views: ``per_view`` (one forward per
    view, batch statistics of each view alone, as the authors' code) or ``joint`` (one forward
    over all views concatenated).

    ``backbone`` is a registered name or ``timm:NAME``, ``torchvision:NAME``,
    ``package.module:factory`` (:mod:`siamkit.models.external`), built with the keyword arguments
    ``backbone_args``; ``small_stem=true`` gives a ResNet-style one the CIFAR stem. ``init`` is a
    weights file the backbone starts from (a fresh run only; ``init_strict=false`` allows a
    partial load).
    """

    backbone: str = "resnet18_cifar"
    backbone_args: dict | None = None
    small_stem: bool | None = None
    init: str | None = None
    init_strict: bool = True
    width: int | None = num(None, 0, lo_open=True)
    proj_dim: int = num(PROJ_DIM, 0, lo_open=True)
    proj_hidden: int = num(PROJ_DIM, 0, lo_open=True)
    proj_layers: int | None = num(None, 0, lo_open=True)
    pred_hidden: int = num(PRED_HIDDEN, 0, lo_open=True)
    bn: str = choice("per_view", BN_MODES)

    def __post_init__(self) -> None:
        check_section("model", self)
        if ":" in self.backbone:  # another library's; checked for syntax here, built by siamkit.models
            check_spec(self.backbone)
            if self.width is not None:
                raise ConfigError(f"model.width applies to siamkit's own backbones; give {self.backbone}'s "
                                  "in model.backbone_args")  # fmt: skip
        else:
            BACKBONES.get(self.backbone).check_width(self.width)
        if self.backbone_args is not None and any(not isinstance(k, str) for k in self.backbone_args):
            raise ConfigError(f"model.backbone_args must map argument names to values, got {self.backbone_args!r}")


@dataclass(frozen=True)
class DataConfig:
    """``recipe=None`` picks the dataset's recipe. ``load_size`` is the square size images are
    decoded to (image folders); ``None`` means ``image_size``, or ``image_size * 256/224`` for the
    imagenet recipe. Image folders are decoded once into an on-disk cache (``cache``; under
    ``cache_dir``, default ``$SIAMKIT_CACHE`` or ``~/.cache/siamkit``); without it they are held in
    memory up to ``max_memory_gb`` and streamed beyond (checked first with ``verify_images``).
    ``crop_min_scale`` is the smallest area a training crop may cover, as a fraction of the image
    (the lower end of RandomResizedCrop's scale; ``None``: the recipe's, 0.08 for ``cifar``).
    ``jitter_strength`` scales the recipe's colour-jitter ranges (brightness, contrast, saturation,
    hue; SimCLR's colour-distortion strength relative to the recipe's): 0.5 halves them.
    ``image_size`` is the size evaluation sees (and training, unless ``train_size`` says otherwise:
    a smaller training crop than evaluation size is FixRes's train-test resolution setting).
    ``progressive_from``: progressive resolution, the training crop size (px) at the start; it
    grows linearly to the training size by the share ``progressive_until`` (default 0.5) of
    training (of the time budget, else of the steps), in multiples of 8 px.
    ``eval_data``: labelled data (``train/<class>``, ``val/<class>``, or a labels CSV) for the
    kNN monitor, e.g. beside an unlabeled ``folder``.
    ``local_crops``: multi-crop (SwAV), this many small crops per image besides the method's
    views, of ``local_size`` px (default half the training crop size) covering
    ``local_min_scale``..``local_max_scale`` of the image (default 0.05..0.4, DINO's); they are
    predicted from and never targets (symmetric and ensemble objectives)."""

    dataset: str = choice("cifar10", DATASETS)
    data_root: str | None = None
    download: bool = False
    recipe: str | None = choice(None, RECIPES)
    image_size: int | None = num(None, 0, lo_open=True)
    crop_min_scale: float | None = num(None, 0.0, 1.0, lo_open=True)
    jitter_strength: float | None = num(None, 0.0)
    train_size: int | None = num(None, 0, lo_open=True)
    progressive_from: int | None = num(None, 0, lo_open=True)
    progressive_until: float | None = num(None, 0.0, 1.0, lo_open=True)
    load_size: int | None = num(None, 0, lo_open=True)
    train_subset: int | None = num(None, 0, lo_open=True)
    skip_bad_images: bool = False
    verify_images: bool = True
    max_memory_gb: float = num(4.0, 0.0, lo_open=True)
    cache: bool = True
    cache_dir: str | None = None
    eval_data: str | None = None
    num_workers: int = num(2, 0)
    local_crops: int = num(0, 0)
    local_size: int | None = num(None, 0, lo_open=True)
    local_min_scale: float | None = num(None, 0.0, 1.0, lo_open=True)
    local_max_scale: float | None = num(None, 0.0, 1.0, lo_open=True)

    def __post_init__(self) -> None:
        check_section("data", self)
        if DATASETS.get(self.dataset).needs_root and not self.data_root:
            raise ConfigError(f"data.dataset={self.dataset} needs --data-root DIR (data.data_root)")
        if self.crop_min_scale is not None:
            top = RECIPES.get(self.resolved_recipe()).crop_scale[1]
            if self.crop_min_scale > top:
                raise ConfigError(f"data.crop_min_scale={self.crop_min_scale} exceeds the largest crop area of "
                                  f"recipe {self.resolved_recipe()} ({top}); give a value up to {top}")  # fmt: skip
        if self.progressive_until is not None and self.progressive_from is None:
            raise ConfigError(f"data.progressive_until={self.progressive_until} needs data.progressive_from "
                              "(the crop size the ramp starts at); give both, or neither")  # fmt: skip
        if self.progressive_from is not None and self.progressive_from > self.train_crop_size():
            which = "data.train_size" if self.train_size is not None else "data.image_size"
            raise ConfigError(f"data.progressive_from={self.progressive_from} exceeds the final training crop size "
                              f"{self.train_crop_size()} ({which}); progressive resolution grows to it, "
                              "so give a smaller start")  # fmt: skip
        hue = self.augmentation().jitter[3]
        if hue > 0.5:
            raise ConfigError(f"data.jitter_strength={self.jitter_strength} makes the hue jitter {hue:g} turns; "
                              "it can be at most 0.5 (half the colour wheel), so give a smaller strength")  # fmt: skip
        self._check_local_crops()

    def _check_local_crops(self) -> None:
        given = [k for k in ("local_size", "local_min_scale", "local_max_scale") if getattr(self, k) is not None]
        if given and self.local_crops == 0:
            raise ConfigError(f"data.{given[0]} applies to multi-crop's small crops; give data.local_crops=N "
                              "(how many per image) too, or leave it out")  # fmt: skip
        lo, hi = self.local_scale()
        if lo >= hi:
            raise ConfigError(f"data.local_min_scale={lo} must be below data.local_max_scale={hi}")
        if self.local_crops and self.local_crop_size() > self.train_crop_size():
            raise ConfigError(f"data.local_size={self.local_size} exceeds the training crop size "
                              f"{self.train_crop_size()}; multi-crop's small crops are smaller")  # fmt: skip

    def local_scale(self) -> tuple[float, float]:
        """The small crops' area range, as fractions of the image."""
        lo, hi = self.local_min_scale, self.local_max_scale
        return (lo if lo is not None else LOCAL_SCALE[0], hi if hi is not None else LOCAL_SCALE[1])

    def local_crop_size(self) -> int:
        return self.local_size if self.local_size is not None else max(1, self.train_crop_size() // 2)

    def local_augmentation(self):
        """The small crops' augmentation: the training recipe with :meth:`local_scale`."""
        return dataclasses.replace(self.augmentation(), crop_scale=self.local_scale())

    def resolved_recipe(self) -> str:
        if self.recipe is not None:
            return self.recipe
        return DATASETS.get(self.dataset).recipe_for(self.image_size)

    def augmentation(self):  # a siamkit.data.recipes.Recipe; config sits below data, so not imported
        """The training augmentation: the resolved recipe with ``crop_min_scale`` and
        ``jitter_strength`` applied."""
        recipe = RECIPES.get(self.resolved_recipe())
        if self.crop_min_scale is not None:
            recipe = dataclasses.replace(recipe, crop_scale=(self.crop_min_scale, recipe.crop_scale[1]))
        if self.jitter_strength is not None:
            recipe = dataclasses.replace(recipe, jitter=tuple(j * self.jitter_strength for j in recipe.jitter))
        return recipe

    def crop_size(self) -> int:
        return self.image_size if self.image_size is not None else RECIPES.get(self.resolved_recipe()).size

    def train_crop_size(self) -> int:
        """The training crops' size once any progressive ramp is over: ``train_size``, else :meth:`crop_size`."""
        return self.train_size if self.train_size is not None else self.crop_size()

    def crop_size_at(self, progress: float) -> int:
        """The training crop size at ``progress`` (share of training done): :meth:`train_crop_size`,
        or the progressive-resolution ramp from ``progressive_from`` to it."""
        if self.progressive_from is None:
            return self.train_crop_size()
        until = self.progressive_until if self.progressive_until is not None else PROGRESSIVE_UNTIL
        return ramp_size(self.progressive_from, self.train_crop_size(), progress, until)

    def decode_size(self) -> int:
        if self.load_size is not None:
            return self.load_size
        size = self.crop_size()
        return round(size * 256 / 224) if self.resolved_recipe() == "imagenet" else size


@dataclass(frozen=True)
class OptimConfig:
    """``lr`` is the base rate; with ``lr_scaling="linear"`` the rate used is ``lr * batch / 256``
    (SimSiam's rule), computed at run time. ``fixed_predictor_lr`` keeps the predictor at the base
    rate while the rest follows the schedule (SimSiam section 4.1)."""

    optimizer: str = choice("sgd", OPTIMIZERS)
    lr: float = num(0.06, 0.0, lo_open=True)  # GSG section 5.1, CIFAR-10
    lr_scaling: str = choice("none", LR_SCALINGS)
    momentum: float = num(0.9, 0.0, 1.0)
    weight_decay: float = num(5e-4, 0.0)
    schedule: str = choice("constant", LR_SCHEDULES)  # GSG: "no learning rate schedule" on CIFAR-10
    warmup_epochs: float = num(0.0, 0.0)
    fixed_predictor_lr: bool = False
    lars_trust: float = num(0.001, 0.0, lo_open=True)  # LARS eta (You et al. 2017)

    def __post_init__(self) -> None:
        check_section("optim", self)

    def base_lr(self, batch_size: int) -> float:
        return self.lr * batch_size / 256 if self.lr_scaling == "linear" else self.lr


@dataclass(frozen=True)
class TrainConfig:
    """``channels_last=None``: on for CUDA and for bf16 on CPU, where it is measured faster.
    ``knn_every``: run the kNN monitor every N epochs (0: never; the last epoch always runs it).
    ``batch_size`` is at least 2: BatchNorm needs two samples to normalise a batch.
    ``time_budget``: seconds of training (evaluation and checkpoints not counted); the schedules are
    planned over it and the run stops when it is spent, or after ``epochs``, whichever comes first.
    ``compile``: run the training network through ``torch.compile`` (its first steps compile, and
    that time counts against the budget; one graph per crop size, up to Dynamo's recompile limit,
    8 by default); it trains the same network up to the fused kernels' rounding, and checkpoints
    have the same keys."""

    epochs: int = num(200, 0, lo_open=True)  # GSG section 5.1, CIFAR-10
    time_budget: float | None = num(None, 0.0, lo_open=True)  # seconds of training; schedules span it
    batch_size: int = num(512, 2)
    precision: str = choice("fp32", PRECISIONS)
    device: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    seed: int = num(0, 0, SEED_MAX)
    knn_every: int = num(1, 0)
    knn_k: int = num(200, 0, lo_open=True)
    knn_temperature: float = num(0.1, 0.0, lo_open=True)
    knn_train_subset: int | None = num(None, 0, lo_open=True)
    log_every: int = num(10, 0, lo_open=True)

    def __post_init__(self) -> None:
        check_section("train", self)

    def use_channels_last(self, device_type: str) -> bool:
        if self.channels_last is not None:
            return self.channels_last
        return device_type == "cuda" or resolve_precision(self.precision, device_type) == "bf16"


SECTIONS = {
    "method": MethodConfig,
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}
