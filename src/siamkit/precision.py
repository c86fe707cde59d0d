"""Numeric precision: the one autocast helper every forward pass uses."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device | str):
    """A context in which forwards run at ``precision``: ``fp32`` runs as is, ``bf16`` and ``fp16``
    under ``torch.autocast`` on ``device``'s type (losses cast themselves back to fp32)."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])


@functools.cache
def _cpu_flags() -> str | None:
    """``/proc/cpuinfo`` (Linux), or ``None`` where it cannot be read."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_has_native_bf16() -> bool:
    """The CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX); without it oneDNN
    emulates them and bf16 runs far slower than fp32 (measured: 18x on an AVX2-only Zen 3).
    Linux only (``/proc/cpuinfo``); elsewhere ``False``, so ``auto`` means fp32."""
    flags = _cpu_flags()
    return flags is not None and any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def cpu_is_avx2_only() -> bool:
    """An x86 CPU with AVX2 and no AVX-512 (read from ``/proc/cpuinfo``; ``False`` where unknown)."""
    flags = _cpu_flags()
    return flags is not None and " avx2" in flags and " avx512f" not in flags


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto``: bf16 where the hardware computes it natively (CUDA with bf16 support, a CPU with
    AVX512-BF16 or AMX), else fp32. Any other value is returned as is."""
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"
