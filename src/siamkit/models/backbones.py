"""The backbone registry: a name -> how to build the trunk, and what it gives.

A backbone maps images ``(B, 3, H, W)`` to pooled features ``(B, feature_dim)``. Its entry knows
the feature dimension for a width, the projector depth the papers pair with it, and how its
weights are named elsewhere (for export). Add one with :func:`register_backbone`. Names with a
colon come from other libraries (``timm:NAME``, ``torchvision:NAME``, ``package.module:factory``;
:mod:`siamkit.models.external`); :func:`backbone_parts` builds either kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from siamkit.errors import ConfigError
from siamkit.models.external import Built, build_external
from siamkit.models.resnet import BasicBlock, Bottleneck, ResNet
from siamkit.registry import BACKBONES


@dataclass(frozen=True)
class Backbone:
    """A registered backbone.

    ``build(width)`` returns the module (``width=None``: the default); ``feature_dim(width)`` its
    output size; ``proj_layers`` the projector depth that goes with it (GSG appendix C: 2 for
    small-image stems, 3 for ImageNet stems); ``torchvision`` the torchvision model whose
    ``state_dict`` keys it shares (``None``: not expressible there); ``note`` where it comes from.
    """

    name: str
    build: Callable[[int | None], nn.Module]
    feature_dim: Callable[[int | None], int]
    proj_layers: int = 2
    default_width: int | None = None
    torchvision: str | None = None
    small_stem: bool = False  # 3x3 stride-1 stem, no max-pool (CIFAR-size inputs)
    note: str = ""

    def check_width(self, width: int | None) -> None:
        if width is not None and self.default_width is None:
            raise ConfigError(f"model.width: backbone {self.name!r} has no width to set; leave model.width unset")


def register_backbone(backbone: Backbone, replace: bool = False) -> Backbone:
    """Add ``backbone`` to the registry (``--backbone NAME``)."""
    return BACKBONES.register(backbone.name, backbone, replace=replace)


def get_backbone(name: str) -> Backbone:
    return BACKBONES.get(name)


def build_backbone(
    name: str, width: int | None = None, args: dict | None = None, small_stem: bool | None = None
) -> nn.Module:
    """Build a backbone; ``width`` overrides a registered one's default width where it has one."""
    return backbone_parts(name, width, args, small_stem).module


def backbone_parts(
    name: str, width: int | None = None, args: dict | None = None, small_stem: bool | None = None
) -> Built:
    """The module, its feature dimension and where its weights come from, for a registered name or
    an external spec (``args``: the library's keyword arguments; ``small_stem``: the CIFAR stem)."""
    if ":" in name:
        if width is not None:
            raise ConfigError(f"model.width applies to siamkit's own backbones; give {name}'s in model.backbone_args")
        return build_external(name, args, small_stem)
    entry = get_backbone(name)
    entry.check_width(width)
    if args:
        raise ConfigError(f"model.backbone_args applies to timm:, torchvision: and module backbones, not {name!r}")
    if small_stem is not None and small_stem != entry.small_stem:
        stem = "a small-image stem" if entry.small_stem else "an ImageNet stem"
        raise ConfigError(f"model.small_stem={small_stem}: {name} has {stem}; choose another backbone or unset it")
    return Built(entry.build(width), entry.feature_dim(width), ("fc",), "siamkit", entry.small_stem, entry.proj_layers)


def _resnet(
    name: str, block, layers, stem: str, width: int, torchvision: str | None, note: str, last_stage: int = 8
) -> Backbone:
    return Backbone(
        name=name,
        build=lambda w: ResNet(block, layers, stem=stem, width=w if w is not None else width, last_stage=last_stage),
        feature_dim=lambda w: (w if w is not None else width) * last_stage * block.expansion,
        proj_layers=2 if stem == "cifar" else 3,
        default_width=width,
        torchvision=torchvision,
        small_stem=stem == "cifar",
        note=note,
    )


for _b in (
    _resnet("resnet18_cifar", BasicBlock, (2, 2, 2, 2), "cifar", 64, "resnet18", "GSG appendix C.2 (CIFAR-10)"),
    _resnet("resnet10_cifar", BasicBlock, (1, 1, 1, 1), "cifar", 32, None, "siamkit's CPU-scale addition"),
    _resnet(
        "resnet10_cifar_wide4",
        BasicBlock,
        (1, 1, 1, 1),
        "cifar",
        16,
        None,
        "resnet10_cifar with a last stage twice as wide (16 x width channels): 256-d features at width 16 "
        "for 1.36x the speedrun step on a CPU (docs/speedrun.md)",
        last_stage=16,
    ),
    _resnet("resnet18", BasicBlock, (2, 2, 2, 2), "imagenet", 64, "resnet18", "He et al. 2016, torchvision names"),
    _resnet("resnet50", Bottleneck, (3, 4, 6, 3), "imagenet", 64, "resnet50", "GSG appendix C.1 (ImageNet)"),
):
    register_backbone(_b)
