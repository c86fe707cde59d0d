"""A labelled split of square RGB uint8 images, in memory or as files to stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from siamkit.splits import balanced_fraction, stratified_subset


@dataclass
class ImageSet:
    """One split. Exactly one of ``images`` (in memory or memory-mapped) and ``files`` (streamed)
    is set. An unlabeled split has no ``classes`` and every label ``-1``. ``paths``: the file of
    each image, when it came from files; ``skipped``: ``(file, reason)`` of the unreadable ones."""

    name: str
    classes: list[str]
    labels: torch.Tensor  # (N,) int64
    size: int  # images are (3, size, size)
    images: torch.Tensor | None = None  # (N, 3, size, size) uint8
    files: list[Path] | None = None
    paths: list[Path] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def subset(self, n: int, seed: int = 0) -> ImageSet:
        """A fixed, class-stratified subset of ``n`` images, so results on a subset are reproducible."""
        if n >= len(self):
            return self
        return self.take(stratified_subset(self.labels, n, seed))

    def label_fraction(self, fraction: float, seed: int = 0) -> ImageSet:
        """The few-label split of semi-supervised evaluation: ``fraction`` of the images, the same
        number from every class (:func:`~siamkit.splits.balanced_fraction`), drawn with ``seed``."""
        return self.take(balanced_fraction(self.labels, fraction, seed))

    def take(self, indices) -> ImageSet:
        """The images at ``indices`` (in that order)."""
        keep = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(
            self.name,
            self.classes,
            self.labels[keep],
            self.size,
            images=None if self.images is None else self.images[keep],
            files=None if self.files is None else [self.files[i] for i in keep.tolist()],
            paths=None if self.paths is None else [self.paths[i] for i in keep.tolist()],
            skipped=self.skipped,
        )
