"""Batches of uint8 images for training (sharded across ranks) and for feature extraction.

In-memory splits are indexed directly; streamed splits go through DataLoader workers that only
decode and resize. Augmentation happens afterwards, batched on the training device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from siamkit.data.images import decode_image
from siamkit.data.imageset import ImageSet


class _Files(Dataset):
    def __init__(self, data: ImageSet):
        self.files, self.size = data.files, data.size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return torch.from_numpy(decode_image(self.files[i], self.size)), i  # (3, S, S) uint8, index


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The epoch's shuffle: a function of (seed, epoch) only, the same on every rank, so a resumed
    run replays it exactly."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def train_batches(
    data: ImageSet,
    global_batch: int,
    epoch: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    start_step: int = 0,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    with_labels: bool = False,
) -> Iterator[Tensor] | Iterator[tuple[Tensor, Tensor]]:
    """Yield this rank's share ``(global_batch / world, 3, S, S)`` of each global batch of the epoch,
    from ``start_step`` on (with ``with_labels``, ``(images, labels)`` pairs). Rank ``r`` takes rows
    ``r*b:(r+1)*b`` of the global batch, so the union over ranks is exactly the single-process
    batch. The last incomplete batch is dropped."""
    b = global_batch // world
    order = epoch_order(len(data), seed, epoch)
    steps = len(data) // global_batch
    local = [order[k * global_batch + rank * b : k * global_batch + (rank + 1) * b] for k in range(start_step, steps)]
    device = torch.device(device)
    pin = device.type == "cuda"
    if data.in_memory:
        for idx in local:
            x = data.images[idx]
            x = (x.pin_memory() if pin else x).to(device, non_blocking=True)
            yield (x, data.labels[idx].to(device)) if with_labels else x
        return
    loader = DataLoader(
        _Files(data),
        batch_sampler=[i.tolist() for i in local],
        num_workers=num_workers,
        pin_memory=pin,
        persistent_workers=False,
    )
    for x, idx in loader:
        x = x.to(device, non_blocking=True)
        yield (x, data.labels[idx].to(device)) if with_labels else x


def eval_batches(data: ImageSet, batch_size: int, device: torch.device | str = "cpu", num_workers: int = 0):
    """Yield ``(images uint8, labels)`` in dataset order."""
    device = torch.device(device)
    if data.in_memory:
        for start in range(0, len(data), batch_size):
            yield data.images[start : start + batch_size].to(device), data.labels[start : start + batch_size]
        return
    loader = DataLoader(_Files(data), batch_size=batch_size, num_workers=num_workers, pin_memory=device.type == "cuda")
    for x, idx in loader:
        yield x.to(device, non_blocking=True), data.labels[idx]
