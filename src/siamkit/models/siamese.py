"""The Siamese network: backbone + projector (the encoder ``f``) and the predictor ``h``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from siamkit.config import ModelConfig
from siamkit.models.backbones import backbone_parts
from siamkit.models.heads import predictor as predictor_mlp
from siamkit.models.heads import projector


class SiameseNet(nn.Module):
    """``forward(views) -> (z, p)``: views ``(V, B, C, H, W)`` -> projections and predictions ``(V, B, D)``.
    ``forward(views, local)`` adds multi-crop's small crops ``local : (L, B, C, h, w)`` (another
    size, so their own forward; BatchNorm as ``cfg.bn`` says among them), after the views:
    ``(V + L, B, D)``. One call, so a DDP wrapper sees one forward per step.

    With ``predictor=False`` the predictor is the identity and ``p = z`` (GSG section 6.2; the
    method spec decides). Returns raw ``z``: the objective decides which side gets the stop-gradient.
    """

    def __init__(self, cfg: ModelConfig, predictor: bool = True):
        super().__init__()
        self.cfg = cfg
        self.parts = backbone_parts(cfg.backbone, cfg.width, cfg.backbone_args, cfg.small_stem)
        self.backbone = self.parts.module
        self.feature_dim = self.parts.feature_dim
        layers = cfg.proj_layers if cfg.proj_layers is not None else self.parts.proj_layers
        self.projector = projector(self.feature_dim, cfg.proj_dim, cfg.proj_hidden, layers)
        self.predictor: nn.Module = predictor_mlp(cfg.proj_dim, cfg.pred_hidden) if predictor else nn.Identity()

    def encode(self, x: Tensor) -> Tensor:
        """The encoder ``f``: images ``(N, C, H, W)`` -> projections ``(N, D)``."""
        return self.projector(self.backbone(x))

    def forward(self, views: Tensor, local: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = forward_views(self.encode, views, self.cfg.bn)  # (V, B, D)
        if local is not None:
            z = torch.cat([z, forward_views(self.encode, local, self.cfg.bn)])  # (V + L, B, D)
        p = forward_views(self.predictor, z, self.cfg.bn)  # (V [+ L], B, D)
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
