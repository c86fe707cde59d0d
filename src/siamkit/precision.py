"""Numeric precision: the one autocast helper every forward pass uses."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device | str):
    """A context in which forwards run at ``precision``: ``fp32`` runs as is, ``bf16`` and ``fp16``
    under ``torch.autocast`` on ``device``'s type (losses cast themselves back to fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])
