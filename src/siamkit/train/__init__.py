"""Training: the generic step, the loop, checkpoints' state, schedules, distributed helpers."""

from siamkit.train.objective import collapse_std, step
from siamkit.train.trainer import Monitor, Trainer, train

__all__ = ["Monitor", "Trainer", "collapse_std", "step", "train"]
