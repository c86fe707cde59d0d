"""Shared timing helpers for the benchmark scripts (run as ``python benchmarks/NAME.py``).

On a shared machine the speed drifts by 10-30 % from one minute to the next, so two things
measured one after the other can differ by more than what separates them. Every comparison
therefore runs its sides interleaved: round after round, each side once per round, and reports
each side's median over the rounds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def short_pretrain(values: dict[str, Any], preset: str = "cpu") -> list[dict[str, Any]]:
    """``siamkit.pretrain`` itself on ``values`` over ``preset``, in a temporary folder, with no
    progress bar; the rows of its ``metrics.jsonl``."""
    from siamkit.config import build_config
    from siamkit.pipeline import pretrain
    from siamkit.runs import read_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        pretrain(build_config(values, preset=preset), Path(tmp) / "run", progress=False)
        return read_jsonl(Path(tmp) / "run" / "metrics.jsonl")


def median_time(fn, repeats: int) -> float:
    """Seconds per call of ``fn``: one warm-up call, then the median of ``repeats`` timed calls."""
    return interleaved({"fn": fn}, repeats)["fn"]


def interleaved(fns: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function: one warm-up round, then ``repeats`` rounds in
    which every function is called once, in turn. A function may return the seconds it measured
    itself (e.g. leaving out its own setup); otherwise its call is timed here."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            own = fn()
            if own is not None and not isinstance(own, (int, float)):
                raise TypeError(f"{name} returned {type(own).__name__}: return None, or the seconds it measured")
            elapsed = time.perf_counter() - t0 if own is None else own
            if r:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}
