"""scikit-learn's bundled handwritten digits: real images that need no download."""

from __future__ import annotations

import torch

from siamkit.data.imageset import ImageSet
from siamkit.splits import stratified_split


def load_digits(split: str, size: int = 32) -> ImageSet:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes), a fixed
    stratified 75/25 train/test split (seed 0), upsampled bilinearly to ``size`` and made RGB."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = torch.from_numpy(data.images).float() * (255.0 / 16.0)  # (N, 8, 8), 0..16 -> 0..255
    idx_train, idx_test = stratified_split(data.target, test_size=0.25, seed=0, sort=False)
    idx = torch.from_numpy(idx_train if split == "train" else idx_test)
    x = torch.nn.functional.interpolate(x[idx, None], size=(size, size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(data.target[idx.numpy()]).long()
    return ImageSet(f"digits/{split}", [str(i) for i in range(10)], labels, size, images=x)
