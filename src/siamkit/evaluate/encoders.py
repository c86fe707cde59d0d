"""Frozen encoders for evaluation: a pretraining checkpoint, or a randomly initialised backbone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from siamkit.config import Config
from siamkit.models import SiameseNet, backbone_info, build_backbone
from siamkit.models.resnet import ResNet
from siamkit.train.checkpoint import CheckpointError, checkpoint_file, load_checkpoint


@dataclass
class Encoder:
    """A backbone to evaluate and what evaluation needs to know about it."""

    backbone: ResNet
    name: str  # the checkpoint path, or "random:BACKBONE"
    recipe: str | None  # the augmentation recipe it was pretrained with (its normalisation), if any
    run_dir: Path | None  # the run folder, where evaluation results are appended
    config: Config | None  # the run's config (None for random encoders)
    epoch: int | None = None


def load_model(path: str | Path) -> tuple[SiameseNet, Config, dict]:
    """Rebuild the full Siamese network of a checkpoint (or of a run folder's ``checkpoint.pt``)
    from the checkpoint alone."""
    ck = load_checkpoint(path)
    cfg = Config.from_dict(ck["config"])
    model = SiameseNet(cfg.model, predictor=cfg.method.spec().predictor)
    model.load_state_dict(ck["model"])
    return model, cfg, ck


def load_encoder(spec: str, seed: int = 0) -> Encoder:
    """``spec`` is a checkpoint file, a run folder holding ``checkpoint.pt``, or
    ``random:BACKBONE[:WIDTH]`` (the same architecture, randomly initialised with ``seed``: the
    baseline every report shows)."""
    if spec.startswith("random:"):
        parts = spec.split(":")
        name = parts[1] if len(parts) > 1 else ""
        backbone_info(name)  # a clear error listing the backbones
        try:
            width = int(parts[2]) if len(parts) > 2 else None
        except ValueError:
            raise CheckpointError(f"{spec!r}: the width after the backbone must be an integer") from None
        torch.manual_seed(seed)
        return Encoder(build_backbone(name, width), spec, None, None, None)
    model, cfg, ck = load_model(spec)
    path = checkpoint_file(spec)
    return Encoder(model.backbone, str(path), cfg.data.resolved_recipe(), path.parent, cfg, ck.get("epoch"))
