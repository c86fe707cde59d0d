"""Transfer by logistic regression on frozen features (Ericsson et al. 2021, "How well do
self-supervised models transfer?", as used by GSG appendix D).

The weight decay is chosen on a validation split among 45 log-spaced values from 1e-6 to 1e5,
then the model is refit on train + validation and tested once. The classifier is multinomial
logistic regression fitted with full-batch L-BFGS; the objective is
``mean_i CE(W x_i + b, y_i) + wd/2 * |W|^2`` on standardised features (mean and std of the
fitting set), warm-started along the decay path from the strongest to the weakest.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from siamkit.splits import stratified_split

WD_GRID = torch.logspace(-6, 5, 45, dtype=torch.float64).tolist()  # Ericsson et al. 2021


def _standardise(fit: Tensor, *others: Tensor) -> list[Tensor]:
    mean, std = fit.mean(0, keepdim=True), fit.std(0, keepdim=True).clamp_min(1e-6)
    return [(x - mean) / std for x in (fit, *others)]


def fit_logistic(
    x: Tensor, y: Tensor, num_classes: int, wd: float, init: tuple[Tensor, Tensor] | None = None, max_iter: int = 200
) -> tuple[Tensor, Tensor]:
    """Minimise the regularised multinomial cross-entropy with L-BFGS; returns ``(W, b)``."""
    w = torch.zeros(num_classes, x.shape[1], dtype=x.dtype) if init is None else init[0].clone()
    b = torch.zeros(num_classes, dtype=x.dtype) if init is None else init[1].clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + 0.5 * wd * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _accuracy(wb: tuple[Tensor, Tensor], x: Tensor, y: Tensor) -> float:
    w, b = wb
    return 100.0 * ((x @ w.T + b).argmax(1) == y).double().mean().item()


def logistic_transfer(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    grid: list[float] = WD_GRID,
    progress=None,
) -> dict[str, float]:
    """Select the weight decay on ``val``, refit on ``train + val``, test once.

    Returns ``{"top1", "wd", "val_top1", "seconds"}``."""
    t0 = time.perf_counter()
    c = int(max(train_y.max(), val_y.max(), test_y.max())) + 1
    tr, va = _standardise(train_x.double(), val_x.double())
    best, wb = None, None
    for i, wd in enumerate(sorted(grid, reverse=True)):  # strongest first: warm starts stay well-conditioned
        wb = fit_logistic(tr, train_y, c, wd, init=wb)
        acc = _accuracy(wb, va, val_y)
        if best is None or acc > best[1]:
            best = (wd, acc)
        if progress is not None:
            progress(i + 1)
    wd, val_acc = best
    full_x, full_y = torch.cat([train_x, val_x]).double(), torch.cat([train_y, val_y])
    fx, tx = _standardise(full_x, test_x.double())
    final = fit_logistic(fx, full_y, c, wd, max_iter=1000)
    return {"top1": _accuracy(final, tx, test_y), "wd": wd, "val_top1": val_acc, "seconds": time.perf_counter() - t0}


def split_train_val(y: Tensor, val_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed, stratified train/validation split of indices (for datasets without a val split)."""
    tr, va = stratified_split(y, test_size=val_fraction, seed=seed)
    return torch.from_numpy(tr), torch.from_numpy(va)
