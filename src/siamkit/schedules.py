"""The cosine schedule shared by the learning rate, BYOL's momentum and the linear probe."""

from __future__ import annotations

import math


def cosine(progress: float) -> float:
    """``0.5 * (1 + cos(pi * progress))``: 1 at the start, 0 at the end (``progress`` clamped to
    [0, 1]); SimSiam's ``adjust_learning_rate`` and BYOL's momentum schedule."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
