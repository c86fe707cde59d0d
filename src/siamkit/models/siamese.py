"""The Siamese network: backbone + projector (the encoder ``f``) and the predictor ``h``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from siamkit.models.backbones import backbone_info, build_backbone
from siamkit.models.heads import PRED_HIDDEN, PROJ_DIM, projector
from siamkit.models.heads import predictor as predictor_mlp

BN_MODES = ("per_view", "joint")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; saved with every checkpoint.

    ``proj_layers=None`` follows the backbone's stem: 2 for CIFAR stems (GSG C.2), 3 for ImageNet (C.1).
    ``bn`` is how BatchNorm sees the views: ``per_view`` (one forward per view, batch statistics of
    each view alone, as the authors' code) or ``joint`` (one forward over all views concatenated).
    """

    backbone: str = "resnet18_cifar"
    width: int | None = None
    proj_dim: int = PROJ_DIM
    proj_hidden: int = PROJ_DIM
    proj_layers: int | None = None
    pred_hidden: int = PRED_HIDDEN
    bn: str = "per_view"

    def __post_init__(self) -> None:
        backbone_info(self.backbone)  # raises with the valid names
        if self.bn not in BN_MODES:
            raise ValueError(f"unknown bn mode {self.bn!r}; choose one of {', '.join(BN_MODES)}")
        for key in ("width", "proj_dim", "proj_hidden", "proj_layers", "pred_hidden"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"model.{key} must be a positive integer, got {value}")


class SiameseNet(nn.Module):
    """``forward(views) -> (z, p)``: views ``(V, B, C, H, W)`` -> projections and predictions ``(V, B, D)``.

    With ``predictor=False`` the predictor is the identity and ``p = z`` (GSG section 6.2; the
    method spec decides). Returns raw ``z``: the objective decides which side gets the stop-gradient.
    """

    def __init__(self, cfg: ModelConfig, predictor: bool = True):
        super().__init__()
        self.cfg = cfg
        info = backbone_info(cfg.backbone)
        self.backbone = build_backbone(cfg.backbone, cfg.width)
        layers = cfg.proj_layers or (2 if info.stem == "cifar" else 3)
        self.projector = projector(self.backbone.feature_dim, cfg.proj_dim, cfg.proj_hidden, layers)
        self.predictor: nn.Module = predictor_mlp(cfg.proj_dim, cfg.pred_hidden) if predictor else nn.Identity()

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def encode(self, x: Tensor) -> Tensor:
        """The encoder ``f``: images ``(N, C, H, W)`` -> projections ``(N, D)``."""
        return self.projector(self.backbone(x))

    def forward(self, views: Tensor) -> tuple[Tensor, Tensor]:
        z = forward_views(self.encode, views, self.cfg.bn)  # (V, B, D)
        p = forward_views(self.predictor, z, self.cfg.bn)  # (V, B, D)
        return z, p


def forward_views(fn, x: Tensor, bn: str) -> Tensor:
    """Apply ``fn`` to each view of ``x : (V, B, ...)`` and stack to ``(V, B, ...)``.

    ``per_view`` calls ``fn`` once per view, so BatchNorm normalises each view with its own batch
    statistics; ``joint`` calls it once on the ``V*B`` concatenation (fewer, larger kernels; BN then
    mixes the views' statistics, which changes results, hence an option and not the default).
    """
    if bn == "joint":
        return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    return torch.stack([fn(v) for v in x.unbind(0)])
