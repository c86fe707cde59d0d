"""Training: the generic step, the loop, checkpoints, schedules, distributed helpers."""

from siamkit.train.step import collapse_std, step

__all__ = ["collapse_std", "step"]
