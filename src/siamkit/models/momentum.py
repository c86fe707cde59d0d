"""The momentum target of BYOL: an exponential moving average of the online encoder."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from siamkit.config import TAU_SCHEDULES
from siamkit.models.siamese import SiameseNet, forward_views
from siamkit.schedules import cosine


class MomentumTarget(nn.Module):
    """A momentum copy ``f_ξ`` of the online encoder (backbone + projector; no predictor).

    ``update(online, tau)`` sets ``ξ ← τ ξ + (1 − τ) θ`` for every parameter (BYOL eq. 1 of
    section 3.1), without gradients. The target's parameters never require gradients.

    Buffer policy: BatchNorm running statistics are the target's own. The target runs in training
    mode like the online network (BYOL normalises both branches with batch statistics), so its
    forwards update its running statistics; ``update`` does not touch buffers. They only matter if
    the target itself is ever evaluated in eval mode.
    """

    def __init__(self, online: SiameseNet):
        super().__init__()
        self.backbone = copy.deepcopy(online.backbone)
        self.projector = copy.deepcopy(online.projector)
        self.bn = online.cfg.bn
        for param in self.parameters():
            param.requires_grad_(False)

    def _pairs(self, online: SiameseNet) -> tuple[list[Tensor], list[Tensor]]:
        mine = [*self.backbone.parameters(), *self.projector.parameters()]
        theirs = [*online.backbone.parameters(), *online.projector.parameters()]
        if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs, strict=True)):
            raise ValueError("the momentum target and the online network have different architectures")
        return mine, theirs

    @torch.no_grad()
    def update(self, online: SiameseNet, tau: float) -> None:
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must lie in [0, 1], got {tau}")
        mine, theirs = self._pairs(online)
        for target, param in zip(mine, theirs, strict=True):
            target.lerp_(param.detach(), 1.0 - tau)  # ξ + (1-τ)(θ - ξ) = τξ + (1-τ)θ

    @torch.no_grad()
    def forward(self, views: Tensor) -> Tensor:
        """Views ``(V, B, C, H, W)`` -> target projections ``(V, B, D)`` (no graph)."""
        return forward_views(lambda x: self.projector(self.backbone(x)), views, self.bn)


def tau_at(schedule: str, tau_base: float, step: int, total_steps: int, progress: float | None = None) -> float:
    """The momentum ``tau`` after ``step`` of ``total_steps`` optimizer steps (or, under a time
    budget, after the share ``progress`` of it).

    ``constant``: ``tau_base`` (the GSG authors' code: 0.99). ``cosine``: BYOL's schedule,
    ``1 - (1 - tau_base) (cos(pi k / K) + 1) / 2``, from ``tau_base`` (0.996 in BYOL) to 1.
    """
    if schedule == "constant":
        return tau_base
    if schedule == "cosine":
        return 1.0 - (1.0 - tau_base) * cosine(progress if progress is not None else step / max(total_steps, 1))
    raise ValueError(f"unknown tau schedule {schedule!r}; choose one of {', '.join(TAU_SCHEDULES)}")
