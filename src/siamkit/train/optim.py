"""Optimizers (SGD, LARS) and the learning-rate schedule."""

from __future__ import annotations

import torch
from torch import nn

from siamkit.config import OptimConfig
from siamkit.schedules import cosine


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) as in the MoCo v3 / SimSiam linear-probe code: weight decay and the
    layer-wise trust ratio apply to weights of 2 or more dims; biases and BatchNorm parameters get
    plain momentum SGD."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, trust: float = 0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, trust=trust))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                dp = p.grad
                if p.ndim > 1:
                    dp = dp.add(p, alpha=group["weight_decay"])
                    w_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(dp)
                    one = torch.ones_like(w_norm)
                    q = torch.where(w_norm > 0, torch.where(d_norm > 0, group["trust"] * w_norm / d_norm, one), one)
                    dp = dp.mul(q)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"].mul_(group["momentum"]).add_(dp)
                p.add_(mu, alpha=-group["lr"])
        return loss


def build_optimizer(model: nn.Module, cfg: OptimConfig, base_lr: float) -> torch.optim.Optimizer:
    """One param group for the encoder and one for the predictor, flagged ``fix_lr`` when the
    predictor keeps the base rate (SimSiam section 4.1)."""
    predictor = list(model.predictor.parameters()) if hasattr(model, "predictor") else []
    pred_ids = {id(p) for p in predictor}
    encoder = [p for p in model.parameters() if id(p) not in pred_ids]
    groups = [{"params": encoder, "fix_lr": False}]
    if predictor:
        groups.append({"params": predictor, "fix_lr": cfg.fixed_predictor_lr})
    if cfg.optimizer == "lars":
        return LARS(groups, lr=base_lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, trust=cfg.lars_trust)
    return torch.optim.SGD(groups, lr=base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_at(
    cfg: OptimConfig, base_lr: float, step: int, steps_per_epoch: int, epochs: int, progress: float | None = None
) -> float:
    """The learning rate for optimizer step ``step`` (0-based): linear warm-up over
    ``warmup_epochs``, then constant or cosine decay to 0 at the end of training (SimSiam's
    ``lr * 0.5 * (1 + cos(pi * epoch / epochs))``, evaluated per step).

    Under a time budget ``progress`` is the share of it spent: the cosine runs over the budget and
    the warm-up (still in steps, its length unknown in time) scales it: ``min(1, (step+1)/W) * cos``."""
    if progress is not None:
        warm = cfg.warmup_epochs * steps_per_epoch
        ramp = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        return base_lr * ramp * (cosine(progress) if cfg.schedule == "cosine" else 1.0)
    e = step / steps_per_epoch
    if e < cfg.warmup_epochs:
        return base_lr * (step + 1) / (cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return base_lr
    span = max(epochs - cfg.warmup_epochs, 1e-12)
    return base_lr * cosine((e - cfg.warmup_epochs) / span)


def set_lr(optimizer: torch.optim.Optimizer, lr: float, base_lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr if group.get("fix_lr") else lr
