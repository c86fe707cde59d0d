"""The papers' objectives as pure functions over tensors.

Notation: ``z`` are projections (the targets), ``p = h(z)`` predictions, views
stacked on the leading axis, ``z, p : (V, B, D)``. ``D(p, z) = -cos(p, z)``. The stop-gradient
``sg`` is applied *here*, on the target side, because which side is stopped is part of the
objective (GSG decides it per sample), so models return raw ``z``.

Every loss is computed in fp32 whatever dtype arrives: normalising bf16/fp16 vectors of dimension
2048 loses enough precision to give NaNs and biased cosines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GSG_CASES",
    "GSG_MODES",
    "ensemble",
    "gsg",
    "gsg_cases",
    "gsg_loss_for_cases",
    "gsg_select",
    "negative_cosine",
    "simsiam",
]

# The four cross-image pairs of GSG eq. (5), in the paper's order: (view of image 1, view of image 2).
GSG_CASES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))  # (11,21) (11,22) (12,21) (12,22)
GSG_MODES = ("guided", "random", "reverse")

_EPS = 1e-12  # F.normalize's default: guards zero vectors, far below any real norm


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x.float(), dim=-1, eps=_EPS)


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """``D(p, z) = -(p/|p|)·(z/|z|)`` along the last dim (SimSiam eq. 1), no reduction, no sg.

    ``p, z : (..., D)`` (broadcastable) -> ``(...)``, fp32.
    """
    return -(_unit(p) * _unit(z)).sum(-1)


def simsiam(p: Tensor, z: Tensor) -> Tensor:
    """Symmetrised SimSiam loss over all ordered view pairs.

    ``p : (V, B, D)``, ``z : (G, B, D)`` with ``2 <= G <= V``: the first ``G`` predictions come
    from the views ``z`` came from. Returns the mean over the ``G(V-1)`` ordered pairs ``i != j``,
    ``i < V``, ``j < G``, and the batch of ``D(p[i], sg z[j])``. ``G = V = 2`` is SimSiam eq. (1);
    ``G = V = K`` is SimSiam K-aug (EnSiam paper, middle of its overview figure); ``G < V`` is
    multi-crop (SwAV section 3.2): the ``V - G`` small crops predict every full-size view's target
    and give none themselves.
    """
    _check_targets(p, z, "simsiam", min_views=2)
    v, g = p.shape[0], z.shape[0]
    pn, zn = _unit(p), _unit(z.detach())  # (V, B, D), (G, B, D)
    # sum_{i != j} <pn_i, zn_j> = <sum_i pn_i, sum_j zn_j> - sum_j <pn_j, zn_j>: O(V) instead of O(V G).
    all_pairs = (pn.sum(0) * zn.sum(0)).sum(-1)  # (B,)
    same_view = (pn[:g] * zn).sum(-1).sum(0)  # (B,)
    return -((all_pairs - same_view) / (g * (v - 1))).mean()


def gsg_cases(z1: Tensor, z2: Tensor) -> Tensor:
    """GSG eq. (4)-(5): which cross-image pair of raw projections is closest.

    ``z1, z2 : (2, B, D)``: the two views of each image and of its partner (row ``b`` of ``z2``
    belongs to the partner of row ``b`` of ``z1``). Returns ``(B,)`` int64 in ``0..3``, the index in
    :data:`GSG_CASES` of the smallest Euclidean distance; ties go to the lowest index (the order of
    the ``if/elif`` chain in the paper's Algorithm 1).
    """
    _check_pair(z1, z2, "gsg_cases")
    z1, z2 = z1.detach().float(), z2.detach().float()
    d = torch.stack([torch.linalg.vector_norm(z1[a] - z2[c], dim=-1) for a, c in GSG_CASES])  # (4, B)
    return d.argmin(0)  # argmin returns the first minimal index


def gsg_select(z1: Tensor, z2: Tensor, mode: str = "guided", generator: torch.Generator | None = None) -> Tensor:
    """The case per pair for each GSG mode: ``(B,)`` int64 in ``0..3``.

    ``guided`` is eq. (6) (the closest pair gets the predictor), ``reverse`` eq. (7) (the
    complementary case: the predictor on the two far views, i.e. ``3 - guided``), ``random``
    one of the four cases uniformly per pair, drawn from ``generator``.
    """
    if mode == "guided":
        return gsg_cases(z1, z2)
    if mode == "reverse":
        return 3 - gsg_cases(z1, z2)  # (a, c) -> (1 - a, 1 - c)
    if mode == "random":
        _check_pair(z1, z2, "gsg_select")
        device = generator.device if generator is not None else z1.device
        return torch.randint(4, (z1.shape[1],), generator=generator, device=device).to(z1.device)
    raise ValueError(f"unknown GSG mode {mode!r}; choose one of {', '.join(GSG_MODES)}")


def gsg_loss_for_cases(p1: Tensor, z1: Tensor, p2: Tensor, z2: Tensor, cases: Tensor) -> Tensor:
    """Per-pair GSG loss for given cases: ``(B,)``.

    For case ``(a, c) = GSG_CASES[cases[b]]`` the value is
    ``½ D(p1[a], sg z1[1-a]) + ½ D(p2[c], sg z2[1-c])`` (eq. 6).
    """
    _check_pair(z1, z2, "gsg")
    _check_pair(p1, p2, "gsg")
    rows = torch.arange(z1.shape[1], device=z1.device)
    a, c = cases // 2, cases % 2  # view of image 1 and of image 2 that get the predictor
    term1 = negative_cosine(p1[a, rows], z1.detach()[1 - a, rows])
    term2 = negative_cosine(p2[c, rows], z2.detach()[1 - c, rows])
    return 0.5 * term1 + 0.5 * term2


def gsg(
    p1: Tensor,
    z1: Tensor,
    p2: Tensor,
    z2: Tensor,
    mode: str = "guided",
    reduction: str = "mean",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Guided stop-gradient objective (GSG eq. 4-7).

    ``p1, z1 : (2, B, D)`` predictions and projections of the two views of each image, ``p2, z2``
    those of its partner. Distances are measured on ``z`` (for BYOL w/ GSG pass the momentum
    encoder's projections). ``reduction="none"`` returns the per-pair loss ``(B,)``, ``"mean"``
    its mean.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'none'")
    per_pair = gsg_loss_for_cases(p1, z1, p2, z2, gsg_select(z1, z2, mode, generator))
    return per_pair.mean() if reduction == "mean" else per_pair


def ensemble(p: Tensor, z: Tensor, leave_one_out: bool = False) -> Tensor:
    """EnSiam: the stop-gradient target is the ensemble (mean) of the K projections.

    ``p : (V, B, D)``, ``z : (K, B, D)`` with ``K <= V``: the first ``K`` predictions come from the
    views ``z`` came from (``K = V`` in the paper; ``V - K`` multi-crop small crops predict the
    same target). Returns the mean over the ``V`` predictions and the batch of ``D(p[v], sg z̄)``
    with ``z̄ = mean_j z[j]`` (the EnSiam figure's reading: the average of all ``f_k``), or with
    ``leave_one_out=True`` ``z̄_k = mean_{j != k} z[j]`` for ``k < K`` (FastSiam's form; with
    K = V = 2 it is SimSiam), the full mean for small crops. The mean is over raw projections, as
    the figure averages ``f_k``.
    """
    _check_targets(p, z, "ensemble", min_views=2 if leave_one_out else 1)
    k, v = z.shape[0], p.shape[0]
    z = z.detach().float()
    total = z.sum(0, keepdim=True)  # (1, B, D)
    target = (total / k).expand(v, -1, -1)  # (V, B, D)
    if leave_one_out:
        target = torch.cat([(total - z) / (k - 1), target[k:]])
    return negative_cosine(p, target).mean()


def _check_targets(p: Tensor, z: Tensor, name: str, min_views: int) -> None:
    if p.dim() != 3 or z.dim() != 3 or p.shape[1:] != z.shape[1:] or z.shape[0] > p.shape[0]:
        raise ValueError(
            f"{name}: expected p (V, B, D) and z (G, B, D) with G <= V (targets from the first G views), "
            f"got {tuple(p.shape)} and {tuple(z.shape)}"
        )
    if z.shape[0] < min_views:
        raise ValueError(f"{name}: needs at least {min_views} target views on axis 0, got {z.shape[0]}")


def _check_pair(x1: Tensor, x2: Tensor, name: str) -> None:
    if x1.dim() != 3 or x1.shape[0] != 2 or x1.shape != x2.shape:
        raise ValueError(
            f"{name}: expected two tensors of shape (2, B, D) (two views of each image and of its "
            f"partner), got {tuple(x1.shape)} and {tuple(x2.shape)}"
        )
