"""Typed, validated run configuration and the named presets.

A :class:`Config` has five sections (``method``, ``model``, ``data``, ``optim``, ``train``),
each a frozen dataclass that validates itself. Values come, in order, from the defaults, a preset,
the command-line flags and ``--set section.key=value``; an unknown key or a bad value is an error
that lists the valid choices. Derived values (the scaled learning rate, steps per epoch) are
computed where they are used and never written back, so the saved config is what the user asked for.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from siamkit.data.augment import RECIPES
from siamkit.data.datasets import DATASETS
from siamkit.methods import MethodSpec, resolve_method
from siamkit.models.siamese import ModelConfig

OPTIMIZERS = ("sgd", "lars")
LR_SCHEDULES = ("constant", "cosine")
LR_SCALINGS = ("none", "linear")
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and the valid choices."""


def _choice(section: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{section}.{key}={value!r} is not valid; choose one of {', '.join(choices)}")


def _positive(section: str, obj: Any, *keys: str, allow_zero: bool = False) -> None:
    for key in keys:
        v = getattr(obj, key)
        if v is not None and (v < 0 or (v == 0 and not allow_zero)):
            raise ConfigError(f"{section}.{key} must be {'>= 0' if allow_zero else '> 0'}, got {v}")


@dataclass(frozen=True)
class MethodConfig:
    """The method by registry name, and overrides of its spec (``None``: the method's default)."""

    name: str = "simsiam"
    views: int | None = None
    predictor: bool | None = None
    shared_views: bool | None = None
    leave_one_out: bool | None = None
    tau: float | None = None
    tau_schedule: str | None = None

    def __post_init__(self) -> None:
        try:
            self.spec()
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def spec(self) -> MethodSpec:
        overrides = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        return resolve_method(self.name, **overrides)


@dataclass(frozen=True)
class DataConfig:
    """``recipe=None`` picks the dataset's recipe (digits, cifar; imagefolder: cifar for images of
    64 px or less, else imagenet). ``load_size`` is the square size images are decoded to (image
    folders); ``None`` means ``image_size``, or ``image_size * 256/224`` for the imagenet recipe."""

    dataset: str = "cifar10"
    data_root: str | None = None
    download: bool = False
    recipe: str | None = None
    image_size: int | None = None
    load_size: int | None = None
    train_subset: int | None = None
    skip_bad_images: bool = False
    verify_images: bool = True
    max_memory_gb: float = 4.0
    num_workers: int = 2

    def __post_init__(self) -> None:
        _choice("data", "dataset", self.dataset, DATASETS)
        if self.recipe is not None:
            _choice("data", "recipe", self.recipe, tuple(RECIPES))
        _positive("data", self, "image_size", "load_size", "train_subset", "max_memory_gb")
        _positive("data", self, "num_workers", allow_zero=True)
        if self.dataset in ("cifar10", "cifar100", "imagefolder") and not self.data_root:
            raise ConfigError(f"data.dataset={self.dataset} needs --data-root DIR (data.data_root)")

    def resolved_recipe(self) -> str:
        if self.recipe:
            return self.recipe
        if self.dataset == "digits":
            return "digits"
        if self.dataset == "imagefolder" and (self.image_size or 32) > 64:
            return "imagenet"
        return "cifar"

    def crop_size(self) -> int:
        return self.image_size or RECIPES[self.resolved_recipe()].size

    def decode_size(self) -> int:
        if self.load_size:
            return self.load_size
        size = self.crop_size()
        return round(size * 256 / 224) if self.resolved_recipe() == "imagenet" else size


@dataclass(frozen=True)
class OptimConfig:
    """``lr`` is the base rate; with ``lr_scaling="linear"`` the rate used is ``lr * batch / 256``
    (SimSiam's rule), computed at run time. ``fixed_predictor_lr`` keeps the predictor at the base
    rate while the rest follows the schedule (SimSiam section 4.1)."""

    optimizer: str = "sgd"
    lr: float = 0.06  # GSG section 5.1, CIFAR-10
    lr_scaling: str = "none"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"  # GSG: "no learning rate schedule" on CIFAR-10
    warmup_epochs: float = 0.0
    fixed_predictor_lr: bool = False
    lars_trust: float = 0.001  # LARS eta (You et al. 2017)

    def __post_init__(self) -> None:
        _choice("optim", "optimizer", self.optimizer, OPTIMIZERS)
        _choice("optim", "schedule", self.schedule, LR_SCHEDULES)
        _choice("optim", "lr_scaling", self.lr_scaling, LR_SCALINGS)
        _positive("optim", self, "lr", "lars_trust")
        _positive("optim", self, "momentum", "weight_decay", "warmup_epochs", allow_zero=True)

    def base_lr(self, batch_size: int) -> float:
        return self.lr * batch_size / 256 if self.lr_scaling == "linear" else self.lr


@dataclass(frozen=True)
class TrainConfig:
    """``channels_last=None``: on for CUDA and for bf16 on CPU, where it is measured faster.
    ``knn_every``: run the kNN monitor every N epochs (0: never; the last epoch always runs it)."""

    epochs: int = 200  # GSG section 5.1, CIFAR-10
    batch_size: int = 512
    precision: str = "fp32"
    device: str = "auto"
    channels_last: bool | None = None
    seed: int = 0
    knn_every: int = 1
    knn_k: int = 200
    knn_temperature: float = 0.1
    knn_train_subset: int | None = None
    log_every: int = 10

    def __post_init__(self) -> None:
        _choice("train", "precision", self.precision, PRECISIONS)
        _positive("train", self, "epochs", "batch_size", "knn_k", "knn_temperature", "log_every")
        _positive("train", self, "knn_every", "seed", "knn_train_subset", allow_zero=True)


SECTIONS = {
    "method": MethodConfig,
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


@dataclass(frozen=True)
class Config:
    method: MethodConfig = field(default_factory=MethodConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"section.key": value}`` for every key."""
        return {
            f"{s}.{f.name}": getattr(getattr(self, s), f.name)
            for s, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        unknown = sorted(set(d) - set(SECTIONS) - {"preset"})
        if unknown:
            raise ConfigError(f"unknown config section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
        flat = {f"{s}.{k}": v for s in SECTIONS for k, v in (d.get(s) or {}).items()}
        return build_config(flat, _preset_name=d.get("preset"))


def valid_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _field_types(key: str) -> tuple[type, ...]:
    """The types a config key admits: ``int | None`` -> ``(int, NoneType)``."""
    section, name = _split_key(key)
    hint = typing.get_type_hints(SECTIONS[section])[name]
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def parse_value(key: str, text: str) -> Any:
    """Parse ``text`` for ``key`` by the field's declared type (``--set`` values)."""
    options = _field_types(key)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    base = next(t for t in options if t is not type(None))
    try:
        if base is bool:
            low = text.strip().lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        return base(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r}: expected {base.__name__}") from None


def _split_key(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}")
    return section, name


def _check_type(key: str, value: Any) -> Any:
    options = _field_types(key)
    if value is None and type(None) in options:
        return None
    for t in options:
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if t is not type(None) and isinstance(value, t) and not (t is int and isinstance(value, bool)):
            return value
    names = " or ".join("None" if t is type(None) else t.__name__ for t in options)
    raise ConfigError(f"{key}={value!r}: expected {names}")


def build_config(values: dict[str, Any], preset: str | None = None, _preset_name: str | None = None) -> Config:
    """Defaults, then ``preset``'s values, then ``values`` (dotted keys, already typed or strings
    from ``--set``). Every key and value is checked before anything runs."""
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        merged.update(PRESETS[preset].values)
    merged.update(values)
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in merged.items():
        section, name = _split_key(key)
        if isinstance(value, str) and str not in _field_types(key):
            value = parse_value(key, value)
        sections[section][name] = _check_type(key, value)
    try:
        built = {s: SECTIONS[s](**kw) for s, kw in sections.items()}
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Config(**built, preset=preset or _preset_name)


# ---- presets -------------------------------------------------------------------------------------


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
            "CPU scale (siamkit's): ResNet-10 (CIFAR stem) width 32, bf16, batch 256, CIFAR-10, GSG's "
            "optimizer settings; for 2-core machines",
            {
                **_GSG_CIFAR,
                "model.backbone": "resnet10_cifar",
                "model.width": 32,
                "train.batch_size": 256,
                "train.epochs": 10,
                "train.precision": "bf16",
            },
        ),
        Preset(
            "digits",
            "the demo: embedded digits, ResNet-10 width 16, bf16, batch 64, 30 epochs, lr 0.06 constant",
            {
                "data.dataset": "digits",
                "model.backbone": "resnet10_cifar",
                "model.width": 16,
                "model.proj_dim": 512,
                "model.proj_hidden": 512,
                "model.pred_hidden": 128,
                "train.batch_size": 64,
                "train.epochs": 30,
                "train.precision": "bf16",
                "train.knn_every": 5,
                "train.knn_k": 20,  # 1,347 training images: k = 200 would span more than a class
                "optim.lr": 0.06,
                "optim.weight_decay": 5e-4,
            },
        ),
    )
}


def presets_table() -> str:
    width = max(len(p) for p in PRESETS)
    return "\n".join(f"{p.name.ljust(width)}  {p.reproduces}" for p in PRESETS.values())
