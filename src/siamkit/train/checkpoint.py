"""Checkpoints: written atomically, read with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "siamkit-checkpoint-v1"
CHECKPOINT = "checkpoint.pt"  # the file name inside a run folder


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not siamkit's."""


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash or
    kill at any moment leaves either the old checkpoint or the new one, never a torn file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoint.pt``."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file (or a run folder's), with a clear error when it is not one."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for a damaged file
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a siamkit checkpoint")
    return state
