"""The one training step shared by every method: views in, ``(loss, metrics)`` out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from siamkit.losses import ensemble, gsg_loss_for_cases, gsg_select, simsiam
from siamkit.methods import MethodSpec


def collapse_std(z: Tensor) -> Tensor:
    """SimSiam fig. 2's collapse monitor: per-dimension std over the batch of L2-normalised ``z``,
    averaged over dimensions. ``z : (B, D)``. About ``1/sqrt(D)`` when healthy, 0 when collapsed."""
    return F.normalize(z.detach().float(), dim=-1).std(0).mean()


def step(
    model: nn.Module,
    spec: MethodSpec,
    views: Tensor,
    target: nn.Module | None = None,
    generator: torch.Generator | None = None,
    local: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Forward every view, apply the method's objective; no optimizer work, no side effects.

    ``model``: a :class:`~siamkit.models.SiameseNet` (or its DDP wrapper), ``views -> (z, p)``.
    ``views : (V, B, C, H, W)`` with ``V = spec.views_drawn``. For GSG in the paper's form
    ``V = 4``: views 0-1 of image ``b`` are its two views, and its partner ``perm[b]``
    contributes its views 2-3, augmented independently of its own 0-1 (GSG Algorithm 1:
    ``x21, x22 = aug(x2), aug(x2)``). With ``shared_views`` the partner's views 0-1 are reused.
    ``target``: the :class:`~siamkit.models.MomentumTarget` for momentum methods.
    ``generator`` draws GSG's pairing permutation and random cases (on the views' device).
    ``local : (L, B, C, h, w)``: multi-crop's small crops (symmetric and ensemble objectives):
    they are predicted from, never targets, so a momentum target never encodes them.

    Returns the scalar loss (fp32, with graph) and detached metrics: ``loss``, ``z_std``, and for
    GSG ``case0..case3``, the share of pairs whose predictor went to each cross-image pair.
    """
    if views.dim() != 5 or views.shape[0] != spec.views_drawn:
        raise ValueError(
            f"{spec.name}: expected views of shape (V={spec.views_drawn}, B, C, H, W), got {tuple(views.shape)}"
        )
    if (spec.target == "momentum") != (target is not None):
        need = "needs a momentum target" if spec.target == "momentum" else "takes no momentum target"
        raise ValueError(f"{spec.name}: the method {need}")
    if local is not None and spec.objective == "guided":
        raise ValueError(f"{spec.name}: GSG compares whole views of paired images; it takes no small crops")
    z, p = model(views) if local is None else model(views, local)  # (V [+ L], B, D) each
    zt = target(views) if target is not None else z[: views.shape[0]]  # where the targets come from
    metrics: dict[str, Tensor] = {"z_std": collapse_std(z[0])}

    if spec.objective == "symmetric":
        loss = simsiam(p, zt)
    elif spec.objective == "ensemble":
        loss = ensemble(p, zt, leave_one_out=spec.leave_one_out)
    else:  # guided: pair every image with one of a shuffled batch (GSG section 4)
        b = views.shape[1]
        perm = torch.randperm(b, generator=generator, device=_gen_device(generator, views)).to(views.device)
        partner = slice(0, 2) if spec.shared_views else slice(2, 4)
        p1, z1 = p[:2], zt[:2]  # (2, B, D)
        p2, z2 = p[partner][:, perm], zt[partner][:, perm]  # (2, B, D): row b is the partner of b
        cases = gsg_select(z1, z2, spec.gsg_mode, generator)  # (B,)
        loss = gsg_loss_for_cases(p1, z1, p2, z2, cases).mean()
        shares = torch.bincount(cases, minlength=4).float() / b
        metrics.update({f"case{i}": shares[i] for i in range(4)})
    metrics["loss"] = loss.detach()
    return loss, metrics


def _gen_device(generator: torch.Generator | None, like: Tensor) -> torch.device:
    return generator.device if generator is not None else like.device
