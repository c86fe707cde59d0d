"""Pretraining with the kNN monitor the config asks for: what ``siamkit pretrain`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siamkit.config import Config
from siamkit.evaluate import knn_monitor
from siamkit.train import train


def pretrain(cfg: Config, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Pretrain ``cfg`` into the run folder ``out`` (see :func:`siamkit.train.train`), with the kNN
    monitor of ``train.knn_every``; returns the last epoch's metrics record."""
    return train(cfg, out, resume=resume, progress=progress, monitor=knn_monitor(cfg))
