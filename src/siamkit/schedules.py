"""The cosine schedule shared by the learning rate, BYOL's momentum and the linear probe; the
progressive-resolution ramp of the training crops."""

from __future__ import annotations

import math


def cosine(progress: float) -> float:
    """``0.5 * (1 + cos(pi * progress))``: 1 at the start, 0 at the end (``progress`` clamped to
    [0, 1]); SimSiam's ``adjust_learning_rate`` and BYOL's momentum schedule."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def ramp_size(start: int, final: int, progress: float, until: float, multiple: int = 8) -> int:
    """Progressive resolution: the training crop size at ``progress`` (the share of training done).

    ``start`` px at first, growing linearly to ``final`` px at ``progress = until`` and ``final``
    from then on; the sizes between are rounded down to a multiple of ``multiple`` (never below
    ``start``), so a run sees a few sizes, not one per step. ``until = 0`` is ``final`` throughout."""
    if progress >= until or start >= final:
        return final
    size = start + (final - start) * max(progress, 0.0) / until
    return max(start, int(size) // multiple * multiple)
