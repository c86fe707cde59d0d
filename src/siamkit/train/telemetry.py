"""What a run measures and records about itself: per-epoch meters, the machine, the source, the
metrics log. Run times are only comparable on the same machine with little CPU steal, so the
facts needed to judge that are recorded with every run."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from siamkit._version import __version__
from siamkit.errors import NonFiniteLoss
from siamkit.runs import RunFolder
from siamkit.train import distributed
from siamkit.train.memory import keep_freed_memory

# tqdm's format for a bar over a time budget: its counter is float seconds, shown whole
# ("17/2022 s", not "16.971798295991903/2022"); its rate (trained seconds per second) says nothing
SECONDS_BAR = "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"


@dataclass
class EpochMeter:
    """Running sums of one epoch's metrics (device tensors, so logging never syncs the device)."""

    sums: dict[str, Tensor] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    cpu_steal: float = 0.0  # the machine's CPU time taken by the hypervisor during the steps (jiffies)
    cpu_total: float = 0.0  # all of the machine's CPU time during the steps (jiffies)

    def add(self, metrics: dict[str, Tensor], images: int) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v.detach().float() if k in self.sums else v.detach().float().clone()
        self.steps += 1
        self.images += images

    def means(self, info: distributed.DistInfo) -> dict[str, float]:
        """Per-step means, averaged over ranks (every rank must call this)."""
        keys = sorted(self.sums)
        values = torch.stack([self.sums[k].to(info.device) for k in keys]) / max(self.steps, 1)
        values = distributed.mean_over_ranks(values, info)
        return dict(zip(keys, values.tolist(), strict=True))

    def state(self) -> dict[str, Any]:
        return {
            "sums": {k: v.cpu() for k, v in self.sums.items()},
            "steps": self.steps,
            "images": self.images,
            "seconds": self.seconds,
            "cpu_steal": self.cpu_steal,
            "cpu_total": self.cpu_total,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], device: torch.device) -> EpochMeter:
        sums = {k: v.to(device) for k, v in s["sums"].items()}
        return cls(sums, s["steps"], s["images"], s["seconds"], s.get("cpu_steal", 0.0), s.get("cpu_total", 0.0))

    def timed(self, t0: float, cpu0: tuple[float, float] | None) -> None:
        """Add the wall time since ``t0`` and the CPU times since ``cpu0`` (from :func:`cpu_times`)."""
        self.seconds += time.perf_counter() - t0
        cpu1 = cpu_times()
        if cpu0 is not None and cpu1 is not None:
            self.cpu_steal += cpu1[0] - cpu0[0]
            self.cpu_total += cpu1[1] - cpu0[1]

    def row(self, epoch: int, step: int, lr: float, trained: float, info: distributed.DistInfo) -> dict[str, Any]:
        """The epoch's metrics.jsonl record (``trained``: training seconds since the run began)."""
        row = {"epoch": epoch, "step": step, **self.means(info), "lr": lr}
        row.update(img_per_s=self.images / max(self.seconds, 1e-9), seconds=self.seconds, trained_seconds=trained)
        if (steal := self.steal_share()) is not None:
            row["cpu_steal"] = steal
        return row

    def steal_share(self) -> float | None:
        """The share of the machine's CPU time a virtual machine's host took away while the steps
        ran (0 on bare metal; None where /proc/stat is not available)."""
        return self.cpu_steal / self.cpu_total if self.cpu_total > 0 else None


class MetricsLog:
    """metrics.jsonl (one record per epoch) and TensorBoard events, on rank 0."""

    def __init__(self, folder: RunFolder, keep_epochs: int | None):
        """Keeps the records of epochs ``<= keep_epochs`` already written (a resumed run); records of
        later epochs, which the checkpoint does not hold (killed in between), are dropped.
        ``keep_epochs=None``: a run that starts from nothing, which writes its records anew."""
        self.folder = folder
        folder.keep_metrics(keep_epochs)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(folder.path / "tensorboard"))
        except ImportError:
            print(
                "note: tensorboard is not installed; metrics go to metrics.jsonl only "
                "(pip install 'siamkit[tensorboard]')",
                file=sys.stderr,
            )

    def write(self, row: dict[str, Any]) -> None:
        self.folder.append_metrics(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, int | float):
                    self.tb.add_scalar(k, v, row["epoch"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def machine_name(device: torch.device | str = "cpu") -> str:
    """The processor that trains: the GPU's name on CUDA, else the CPU's model from /proc/cpuinfo
    on Linux, with its family and model numbers (virtual machines may report a bare "AMD EPYC" for
    generations whose step times differ 2x). Recorded in run.json: run times are only comparable on
    the same machine."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" not in fields:
        return platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        return f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    return fields["model name"]


def cpu_times() -> tuple[float, float] | None:
    """(steal, total) CPU time of the whole machine so far, in jiffies, from /proc/stat's ``cpu``
    line; None where it is not available (not Linux). On a virtual machine steal is the time the
    host ran something else while this machine wanted to run: a run's time is only comparable
    with another's when both had little of it."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    ticks = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
    return ticks[7], sum(ticks)


def source_revision() -> dict[str, Any]:
    """The package version and, when siamkit runs from a git checkout, the commit and whether the
    tree had uncommitted changes; ``"unknown"`` where that cannot be found out."""
    out: dict[str, Any] = {"version": __version__, "commit": "unknown", "dirty": "unknown"}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return out
        status = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return out
    out["commit"] = commit.stdout.strip()
    if status.returncode == 0:
        out["dirty"] = bool(status.stdout.strip())
    return out


def environment(device: torch.device) -> dict[str, Any]:
    """The software and machine a run trains on (the first entries of run.json)."""
    return {
        "siamkit": __version__,
        "source": source_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "machine": machine_name(device),
        "threads": torch.get_num_threads(),
        "malloc": keep_freed_memory(),
    }


def check_finite(pending: list[tuple[int, Tensor]], epoch: int, steps_per_epoch: int, last_good: str) -> None:
    """Raise :class:`NonFiniteLoss` at the first non-finite loss of ``pending`` (one device sync
    for the lot)."""
    if not pending:
        return
    losses = torch.stack([l for _, l in pending])
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        global_step, value = pending[int(bad[0])][0], losses[int(bad[0])].item()
        raise NonFiniteLoss(
            f"the loss became {value} at step {global_step + 1} (epoch {epoch + 1}, batch "
            f"{global_step % steps_per_epoch + 1}); training stopped. The last good checkpoint, kept "
            f"intact: {last_good}. Try a lower --lr, fp32/bf16 precision, or check the data."
        )


def summary(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['loss']:+.4f}", f"z_std {row['z_std']:.4f}"]
    if "knn_top1" in row:
        parts.append(f"kNN {row['knn_top1']:.1f}% (1-NN {row['knn1_top1']:.1f}%)")
    if "case0" in row:
        parts.append("cases " + "/".join(f"{row[f'case{i}']:.2f}" for i in range(4)))
    parts.append(f"{row['seconds']:.1f}s, {row['img_per_s']:.0f} img/s")
    if row.get("cpu_steal", 0) >= 0.01:  # a virtual machine's host took CPU time: the rate is low
        parts.append(f"(CPU steal {100 * row['cpu_steal']:.0f} %)")
    return "  ".join(parts)
