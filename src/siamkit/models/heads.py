"""Projector and predictor MLPs (GSG appendix C; SimSiam section 4).

Linear layers followed by BatchNorm carry no bias (the BN shift makes it redundant, as in the
SimSiam reference code). The predictor's output layer has a bias and no BN.
"""

from __future__ import annotations

from torch import nn

from siamkit.config import PRED_HIDDEN, PROJ_DIM


def projector(in_dim: int, out_dim: int = PROJ_DIM, hidden_dim: int = PROJ_DIM, layers: int = 2) -> nn.Sequential:
    """Projector MLP, ``(B, in_dim) -> (B, out_dim)``.

    ``layers=2`` is the CIFAR projector (GSG C.2): Linear+BN+ReLU, Linear+BN.
    ``layers=3`` the ImageNet one (GSG C.1): BN+ReLU after the first two layers, BN only after the last.
    """
    if layers < 1:
        raise ValueError(f"a projector needs at least one layer, got layers={layers}")
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        d = hidden_dim
    mods += [nn.Linear(d, out_dim, bias=False), nn.BatchNorm1d(out_dim)]
    return nn.Sequential(*mods)


def predictor(dim: int = PROJ_DIM, hidden_dim: int = PRED_HIDDEN) -> nn.Sequential:
    """Bottleneck predictor ``h`` (GSG C.1): Linear(dim, hidden)+BN+ReLU, Linear(hidden, dim)."""
    return nn.Sequential(
        nn.Linear(dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, dim),
    )
