"""A trained backbone's weights for use elsewhere, with the keys of the library it came from.

A timm or torchvision backbone is that library's module (classifier removed), so its state dict
loads into ``timm.create_model(NAME, num_classes=0)`` or the torchvision model with its classifier
set to the identity; siamkit's ResNets use torchvision's names. :func:`export_backbone` returns the
tensors and a line of Python that loads them.
"""

from __future__ import annotations

import json

from torch import Tensor

from siamkit.config import ModelConfig
from siamkit.errors import ConfigError
from siamkit.models.backbones import get_backbone
from siamkit.models.external import Built, split_spec

TORCHVISION_WIDTH = 64  # torchvision's ResNets have 64 channels in the first stage
EXPORT_FORMATS = {
    "backbone": "the backbone's state dict (.pt), keys of the library it came from",
    "safetensors": "the same tensors as a .safetensors file",
    "torchvision": "backbone, checked to load into torchvision's ResNet",
    "state_dict": "the whole network with its config (siamkit's own)",
}
SMALL_STEM = "m.conv1 = torch.nn.Conv2d(3, m.conv1.out_channels, 3, 1, 1, bias=False); m.maxpool = torch.nn.Identity()"


def export_backbone(
    model_cfg: ModelConfig, parts: Built, state_dict: dict[str, Tensor], fmt: str
) -> tuple[dict[str, Tensor], list[str]]:
    """The backbone ``state_dict`` for ``fmt`` (backbone, safetensors or torchvision) and notes:
    how to load it."""
    if fmt not in ("backbone", "safetensors", "torchvision"):
        raise ConfigError(f"unknown backbone export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "torchvision":
        _check_torchvision(model_cfg)
    read = "safetensors.torch.load_file(PATH)" if fmt == "safetensors" else "torch.load(PATH, weights_only=True)"
    state = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}  # no shared storage
    return state, [f"load with: {load_snippet(model_cfg, parts)}; m.load_state_dict({read})"]


def load_snippet(cfg: ModelConfig, parts: Built) -> str:
    """Python that builds the bare module this backbone's weights load into (as ``m``)."""
    args = "".join(f", {k}={v!r}" for k, v in (cfg.backbone_args or {}).items())
    stem = f"; {SMALL_STEM}" if parts.small_stem and parts.library != "siamkit" else ""
    if parts.library == "timm":
        return f"m = timm.create_model({split_spec(cfg.backbone)[1]!r}, num_classes=0{args}){stem}"
    if parts.library == "torchvision":
        head = parts.classifier[0]
        where = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in head.split("."))
        name = split_spec(cfg.backbone)[1]
        return f"m = torchvision.models.get_model({name!r}{args}); m{where} = torch.nn.Identity(){stem}"
    if parts.library == "module":
        source, name = split_spec(cfg.backbone)
        return f"import {source}; m = {source}.{name}({args.lstrip(', ')}){stem}"
    entry = get_backbone(cfg.backbone)
    width = cfg.width if cfg.width is not None else entry.default_width
    if entry.torchvision is not None and width == TORCHVISION_WIDTH:
        stem = f"; {SMALL_STEM}" if entry.small_stem else ""
        return f"m = torchvision.models.{entry.torchvision}(); m.fc = torch.nn.Identity(){stem}"
    return f"m = siamkit.models.build_backbone({cfg.backbone!r}, {width})"


def _check_torchvision(cfg: ModelConfig) -> None:
    if ":" in cfg.backbone:
        if split_spec(cfg.backbone)[0] == "torchvision":
            return
        raise ConfigError(f"{cfg.backbone} is not a torchvision model; use --format backbone or safetensors")
    entry = get_backbone(cfg.backbone)
    width = cfg.width if cfg.width is not None else entry.default_width
    if width != TORCHVISION_WIDTH:
        raise ConfigError(
            f"torchvision's ResNets have width {TORCHVISION_WIDTH}; this backbone has width {width}. "
            "Use --format backbone or safetensors."
        )
    if entry.torchvision is None:
        raise ConfigError(f"backbone {entry.name!r} has no torchvision counterpart; use --format backbone")


def metadata(cfg: ModelConfig, parts: Built) -> dict[str, str]:
    """What a safetensors file records about its backbone (string values, as the format requires)."""
    return {
        "backbone": cfg.backbone,
        "backbone_args": json.dumps(cfg.backbone_args or {}),
        "library": parts.library,
        "small_stem": str(parts.small_stem).lower(),
        "feature_dim": str(parts.feature_dim),
        "load": load_snippet(cfg, parts),
    }
