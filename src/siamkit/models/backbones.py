"""The backbone registry: a name -> a ResNet trunk whose feature dimension is known."""

from __future__ import annotations

from dataclasses import dataclass

from siamkit.models.resnet import BasicBlock, Bottleneck, ResNet


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]
    stem: str
    width: int  # the default width (channels of the first stage)
    note: str

    def feature_dim(self, width: int | None = None) -> int:
        return (width or self.width) * 8 * self.block.expansion


BACKBONES: dict[str, BackboneInfo] = {
    b.name: b
    for b in (
        BackboneInfo("resnet18_cifar", BasicBlock, (2, 2, 2, 2), "cifar", 64, "GSG appendix C.2 (CIFAR-10)"),
        BackboneInfo("resnet10_cifar", BasicBlock, (1, 1, 1, 1), "cifar", 32, "siamkit's CPU-scale addition"),
        BackboneInfo("resnet18", BasicBlock, (2, 2, 2, 2), "imagenet", 64, "He et al. 2016, torchvision names"),
        BackboneInfo("resnet50", Bottleneck, (3, 4, 6, 3), "imagenet", 64, "GSG appendix C.1 (ImageNet)"),
    )
}


def backbone_info(name: str) -> BackboneInfo:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def build_backbone(name: str, width: int | None = None) -> ResNet:
    """Build a registered backbone; ``width`` overrides the default first-stage width."""
    info = backbone_info(name)
    return ResNet(info.block, info.layers, stem=info.stem, width=width or info.width)
