"""What a checkpoint holds besides the weights: every RNG state and the per-epoch generators.

Every state is stored as tensors, numbers, strings and plain containers, so a checkpoint loads
with ``torch.load(weights_only=True)`` and never runs code.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from siamkit.config import Config
from siamkit.errors import CheckpointError, TrainingError
from siamkit.runs import RunFolder
from siamkit.train.distributed import DistInfo


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch, NumPy and Python (and CUDA when present)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (also NumPy's state as a tuple, the older layout)."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    if isinstance(np_state, dict):
        keys = np_state["keys"].numpy().astype(np.uint32)
        np_state = (np_state["kind"], keys, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"])
    np.random.set_state(np_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_generators(seed: int, epoch: int, rank: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """Per-epoch generators: augmentation parameters (CPU, the same on every rank: each rank applies
    its rows of the global batch) and GSG's pairing and random cases (per rank, on the device)."""
    g_aug = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    g_step = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch + 7_919 * (rank + 1))
    return g_aug, g_step


def length_dependent(cfg: Config) -> list[str]:
    """The schedules planned over the run's length (a longer run follows a different curve)."""
    found = []
    if cfg.optim.schedule != "constant":
        found.append(f"optim.schedule={cfg.optim.schedule}")
    spec = cfg.method.spec()
    if spec.target == "momentum" and spec.tau_schedule != "constant":
        found.append(f"method.tau_schedule={spec.tau_schedule}")
    if cfg.data.progressive_from is not None:
        found.append(f"data.progressive_from={cfg.data.progressive_from}")
    return found


RESUME_PARTS = ("config", "model", "optimizer", "rng", "epoch", "step_in_epoch")


def check_resumable(ck: dict[str, Any], cfg: Config, path) -> None:
    """The checkpoint holds every part a resume needs, and the run keeps its length unless nothing
    is planned over it (then it trains exactly what an uninterrupted run of the new length would)."""
    parts = RESUME_PARTS + (("target",) if cfg.method.spec().target == "momentum" else ())
    if missing := [p for p in parts if ck.get(p) is None]:
        raise CheckpointError(
            f"{path} has no {', '.join(missing)}; it cannot resume a run (it was not written by siamkit "
            "pretrain, or was cut down, e.g. by export). Start a new run, or evaluate it if it holds model and config."
        )
    old = Config.from_dict(ck["config"])
    changes = []
    if old.train.epochs != cfg.train.epochs:
        changes.append(f"{old.train.epochs} epochs -> {cfg.train.epochs} epochs")
    if old.train.time_budget != cfg.train.time_budget:
        changes.append(f"{_budget_text(old.train.time_budget)} -> {_budget_text(cfg.train.time_budget)}")
    if changes and (planned := length_dependent(old)):
        change = ", ".join(changes)
        raise TrainingError(
            f"the run cannot change its length on resume ({change}): {' and '.join(planned)} is planned over "
            "its length, so the part already trained would differ from a run of the new length. "
            "Start a new run (another --out) for that."
        )


def _budget_text(seconds: float | None) -> str:
    return "no time budget" if seconds is None else f"a {seconds:g} s budget"


def check_start(cfg: Config, folder: RunFolder, info: DistInfo, resume: bool) -> None:
    """What must hold before a run builds anything: the folder matches ``resume``, the precision
    suits the device, the batch splits over the processes."""
    tc, ckpt = cfg.train, folder.checkpoint
    if resume and not folder.has_checkpoint():
        raise TrainingError(f"--resume: no checkpoint at {ckpt}; start the run without --resume")
    if not resume and ckpt.exists():
        raise TrainingError(
            f"{folder.path} already holds a run ({ckpt.name}); pass --resume to continue it or choose another --out"
        )
    if tc.precision == "fp16" and info.device.type != "cuda":
        raise TrainingError("train.precision=fp16 needs CUDA (it uses a grad scaler); use bf16 or fp32 on the CPU")
    if tc.batch_size % info.world:
        raise TrainingError(f"train.batch_size={tc.batch_size} must divide by the {info.world} processes")
