"""Frozen encoders for evaluation: a pretraining checkpoint, or a randomly initialised backbone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from siamkit.config import Config
from siamkit.errors import CheckpointError
from siamkit.models import BACKBONES, SiameseNet, build_backbone, get_backbone
from siamkit.registry import check_spec
from siamkit.runs import checkpoint_file, load_checkpoint

RANDOM = "random"  # ``random:BACKBONE[:WIDTH]``: the baseline every comparison shows


@dataclass
class Encoder:
    """A backbone to evaluate and what evaluation needs to know about it."""

    backbone: nn.Module
    name: str  # the checkpoint path, or "random:BACKBONE[:WIDTH]"
    recipe: str | None  # the augmentation recipe it was pretrained with (its normalisation), if any
    run_dir: Path | None  # the run folder, where evaluation results are appended
    config: Config | None  # the run's config (None for random encoders)
    epoch: int | None = None


def random_spec(backbone: str, width: int | None = None) -> str:
    """The ``--checkpoint`` of a randomly initialised ``backbone``: ``random:BACKBONE[:WIDTH]``."""
    return f"{RANDOM}:{backbone}" + (f":{width}" if width is not None else "")


def random_folder_name(
    backbone: str, width: int | None = None, args: dict | None = None, small_stem: bool | None = None
) -> str:
    """Where a random encoder's evaluations are kept: ``random-BACKBONE[-wWIDTH][-HASH]``, where
    ``HASH`` (8 hex digits) tells apart the same backbone built with other ``args``/``small_stem``."""
    name = f"{RANDOM}-{backbone.replace(':', '-')}" + (f"-w{width}" if width is not None else "")
    if args is None and small_stem is None:
        return name
    built = json.dumps({"args": args, "small_stem": small_stem}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(built.encode()).hexdigest()[:8]}"


def parse_random_spec(spec: str) -> tuple[str, int | None]:
    """``random:BACKBONE[:WIDTH]`` -> ``(backbone, width)``, with clear errors. ``BACKBONE`` may be
    another library's (``random:timm:resnet18``)."""
    head, _, rest = spec.partition(":")
    if head != RANDOM or not rest:
        raise CheckpointError(f"{spec!r}: expected random:BACKBONE or random:BACKBONE:WIDTH")
    before, _, last = rest.rpartition(":")
    if before in BACKBONES or ":" in before:  # BACKBONE:WIDTH
        if not last.isdigit():
            raise CheckpointError(f"{spec!r}: the width after the backbone must be an integer")
        rest, width = before, int(last)
    else:
        width = None
    if ":" in rest:
        check_spec(rest)
    else:
        get_backbone(rest)  # a clear error listing the backbones
    return rest, width


def load_model(path: str | Path) -> tuple[SiameseNet, Config, dict]:
    """Rebuild the full Siamese network of a checkpoint (or of a run folder's ``checkpoint.pt``)
    from the checkpoint alone."""
    ck = load_checkpoint(path)
    missing = [k for k in ("config", "model") if k not in ck]
    if missing:
        raise CheckpointError(f"{checkpoint_file(path)} has no {' or '.join(missing)}; it cannot rebuild a model")
    cfg = Config.from_dict(ck["config"])
    model = SiameseNet(cfg.model, predictor=cfg.method.spec().predictor)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError) as e:
        reason = str(e).splitlines()[0]
        raise CheckpointError(f"{checkpoint_file(path)}: its weights do not fit its config ({reason})") from None
    return model, cfg, ck


def random_encoder(
    backbone: str,
    width: int | None = None,
    args: dict | None = None,
    small_stem: bool | None = None,
    seed: int = 0,
) -> Encoder:
    """A randomly initialised (``seed``) backbone, built exactly as a run's config builds it:
    ``args`` and ``small_stem`` are ``model.backbone_args`` and ``model.small_stem``."""
    torch.manual_seed(seed)
    return Encoder(build_backbone(backbone, width, args, small_stem), random_spec(backbone, width), None, None, None)


def load_encoder(spec: str, seed: int = 0) -> Encoder:
    """``spec`` is a checkpoint file, a run folder holding ``checkpoint.pt``, or
    ``random:BACKBONE[:WIDTH]`` (the same architecture, randomly initialised with ``seed``)."""
    if spec.startswith(f"{RANDOM}:"):
        return random_encoder(*parse_random_spec(spec), seed=seed)
    model, cfg, ck = load_model(spec)
    path = checkpoint_file(spec)
    return Encoder(model.backbone, str(path), cfg.data.resolved_recipe(), path.parent, cfg, ck.get("epoch"))
