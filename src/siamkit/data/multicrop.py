"""The views one training step sees: the method's views, and multi-crop's small crops.

Multi-crop (SwAV, Caron et al. 2020, section 3.2) adds ``L`` small, low-resolution crops per image
besides the method's full-size views. They have few pixels (a 12 px crop a quarter of a 24 px
one), though on a CPU they cost more than that (two made the speedrun step 1.37x slower,
docs/speedrun.md), and only predict: the targets stay the full-size views'
(:func:`siamkit.losses.simsiam` and :func:`~siamkit.losses.ensemble` with fewer targets than
predictions).

Parameters for both come from the same generator, the views' first, so a run without small crops
draws exactly what it drew before they existed, and a distributed run (each rank applying its rows
of the global batch) sees the views a single process would.
"""

from __future__ import annotations

import torch
from torch import Tensor

from siamkit.data.augment import MultiViewAugment


class TrainingViews:
    """``draw(x, batch, views, in_size, g, rows)`` -> ``(views, local)``: ``(V, b, C, S, S)`` and
    ``(L, b, C, s, s)`` (``None`` without small crops), for the rows ``rows`` of a global batch
    of ``batch`` images. ``main.size`` is the full-size views' crop size (progressive resolution sets it)."""

    def __init__(self, main: MultiViewAugment, local: MultiViewAugment | None = None, local_crops: int = 0):
        if (local is None) != (local_crops == 0):
            raise ValueError("small crops need both their augmentation and a count above 0")
        self.main, self.local, self.local_crops = main, local, local_crops

    @classmethod
    def from_config(cls, data, channels_last: bool) -> TrainingViews:
        """From a :class:`~siamkit.config.DataConfig`."""
        main = MultiViewAugment(data.augmentation(), data.train_crop_size(), channels_last)
        if not data.local_crops:
            return cls(main)
        local = MultiViewAugment(data.local_augmentation(), data.local_crop_size(), channels_last)
        return cls(main, local, data.local_crops)

    def draw(
        self, x: Tensor, batch: int, views: int, in_size: int, g: torch.Generator | None, rows: slice
    ) -> tuple[Tensor, Tensor | None]:
        params = self.main.sample(batch, views, in_size, g)
        local = self.local.sample(batch, self.local_crops, in_size, g) if self.local is not None else None
        out = self.main.apply(x, params.rows(rows.start, rows.stop))
        if local is None:
            return out, None
        return out, self.local.apply(x, local.rows(rows.start, rows.stop))
