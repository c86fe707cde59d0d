"""Process-group helpers: one code path for a single process and for ``torchrun``."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from siamkit.errors import ConfigError, TrainingError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: the local CUDA device when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def setup(device_name: str) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): NCCL on CUDA,
    gloo on CPU. A plain launch is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def peer_lost(e: BaseException, info: DistInfo, out) -> TrainingError | None:
    """The error to end this rank with when ``e`` is a collective that failed because another
    process of the group died or stopped answering (``None`` for any other error)."""
    if info.world == 1 or not isinstance(e, RuntimeError):
        return None
    if not (isinstance(e, dist.DistError) or any(w in str(e) for w in ("gloo", "NCCL", "Connection reset"))):
        return None
    silent = silent_ranks(info)
    who = f"rank {', '.join(map(str, silent))}" if silent else "another rank"
    return TrainingError(
        f"rank {info.rank}: lost {who} of the {info.world} processes (it died or stopped answering: "
        f"{str(e).splitlines()[0][:160]}). The last checkpoint in {out} is intact; resume with "
        f"torchrun ... -m siamkit pretrain --resume --out {out}"
    )


def silent_ranks(info: DistInfo, wait_s: float = 5.0) -> list[int]:
    """After a failed collective: the ranks that do not answer a roll call in the job's store within
    ``wait_s`` (the dead ones). Every surviving rank calls in; ``[]`` when the store is gone too."""
    # the launcher (torchrun) sends SIGTERM to the survivors as soon as it sees a worker die: hear
    # the roll call out, then end with the error (the signal adds nothing; this rank is stopping)
    sigterm = (
        signal.signal(signal.SIGTERM, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set(f"siamkit/alive/{info.rank}", "1")
        deadline = time.monotonic() + wait_s
        while True:
            silent = [r for r in range(info.world) if not store.check([f"siamkit/alive/{r}"])]
            if not silent or time.monotonic() > deadline:
                return silent
            time.sleep(0.1)
    except Exception:  # the store died with its host: nothing more can be learned
        return []
    finally:
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def agree(flag: bool, seconds: float, info: DistInfo) -> tuple[bool, float]:
    """One all-reduce per step: whether any rank was signalled, and the largest training time, so
    every rank takes the same learning rate and stops at the same step."""
    if info.world == 1:
        return flag, seconds
    t = torch.tensor(
        [float(flag), seconds], dtype=torch.float64, device=info.device if info.device.type == "cuda" else "cpu"
    )
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0].item()), float(t[1].item())


def mean_over_ranks(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / info.world


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum over ranks is the sum over ranks of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the union of every rank's batch, for CPU process groups (gloo).

    ``torch.nn.SyncBatchNorm`` runs only on CUDA. This module all-reduces the per-channel count,
    sum and sum of squares with the differentiable ``all_reduce``, so the forward pass and the
    gradients equal those of one BatchNorm over the global batch. Eval mode uses the running
    statistics, as any BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input (N, C, ...), got {x.dim()}-d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = torch.full((1,), xf.numel() / xf.shape[1], dtype=torch.float32, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Every BatchNorm normalises over the global batch: ``torch.nn.SyncBatchNorm`` on CUDA, the
    all-reduce BatchNorm above on the CPU. Parameter and buffer names are unchanged."""
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        out = _GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        out.load_state_dict(module.state_dict())
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out
