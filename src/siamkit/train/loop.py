"""The pretraining loop: read it top to bottom in :func:`pretrain`.

Side effects live here and only here: logging, the kNN monitor, checkpoints, signals. The step
itself (:func:`siamkit.train.step`) is pure.
"""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn
from tqdm.auto import tqdm

import siamkit
from siamkit.config import Config
from siamkit.data import MultiViewAugment, load_datasets, train_batches
from siamkit.evaluate import extract_features, knn_accuracy
from siamkit.evaluate.report import read_jsonl
from siamkit.models import MomentumTarget, SiameseNet, tau_at
from siamkit.train import distributed
from siamkit.train.checkpoint import CHECKPOINT, load_checkpoint, save_atomic
from siamkit.train.memory import keep_freed_memory
from siamkit.train.optim import build_optimizer, lr_at, set_lr
from siamkit.train.step import step


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


class NonFiniteLoss(TrainingError):
    pass


class Interrupted(TrainingError):
    pass


@dataclass
class _Epoch:
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
    def from_state(cls, s: dict[str, Any], device: torch.device) -> _Epoch:
        sums = {k: v.to(device) for k, v in s["sums"].items()}
        # checkpoints written before the steal time was kept have no cpu_* entries
        return cls(sums, s["steps"], s["images"], s["seconds"], s.get("cpu_steal", 0.0), s.get("cpu_total", 0.0))

    def timed(self, t0: float, cpu0: tuple[float, float] | None) -> None:
        """Add the wall time since ``t0`` and the CPU times since ``cpu0`` (from :func:`cpu_times`)."""
        self.seconds += time.perf_counter() - t0
        cpu1 = cpu_times()
        if cpu0 is not None and cpu1 is not None:
            self.cpu_steal += cpu1[0] - cpu0[0]
            self.cpu_total += cpu1[1] - cpu0[1]

    def steal_share(self) -> float | None:
        """The share of the machine's CPU time a virtual machine's host took away while the steps
        ran (0 on bare metal; None where /proc/stat is not available)."""
        return self.cpu_steal / self.cpu_total if self.cpu_total > 0 else None


class _Signals:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (a second SIGINT kills)."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class _Writer:
    """metrics.jsonl (one object per epoch) and TensorBoard events, on rank 0."""

    def __init__(self, out: Path, keep_epochs: int):
        """Keeps the rows of epochs 0..``keep_epochs`` already written (a resumed run); rows of
        later epochs, which the checkpoint does not hold (killed in between), are dropped.
        ``keep_epochs=-1``: a run that starts from nothing, which writes its epoch 0 again."""
        self.path = out / "metrics.jsonl"
        if self.path.exists():
            kept = [r for r in read_jsonl(self.path) if r.get("epoch", 0) <= keep_epochs]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            print(
                "note: tensorboard is not installed; metrics go to metrics.jsonl only "
                "(pip install 'siamkit[tensorboard]')",
                file=sys.stderr,
            )

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
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


def _autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _generators(seed: int, epoch: int, rank: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """Per-epoch generators: augmentation parameters (CPU, the same on every rank: each rank applies
    its rows of the global batch) and GSG's pairing and random cases (per rank, on the device)."""
    g_aug = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    g_step = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch + 7_919 * (rank + 1))
    return g_aug, g_step


def knn_monitor(model: SiameseNet, train, test, cfg: Config, device, channels_last: bool) -> dict[str, float]:
    """Weighted kNN (k, T from the config) and 1-NN accuracy of the frozen backbone; the bank is the
    training split without augmentation (optionally a fixed subset)."""
    bank = train.subset(cfg.train.knn_train_subset, seed=cfg.train.seed) if cfg.train.knn_train_subset else train
    kw = dict(
        recipe=cfg.data.resolved_recipe(),
        size=cfg.data.crop_size(),
        device=device,
        precision=cfg.train.precision if cfg.train.precision != "fp16" or device.type == "cuda" else "fp32",
        channels_last=channels_last,
        num_workers=cfg.data.num_workers,
    )
    f_train, y_train = extract_features(model.backbone, bank, **kw)
    f_test, y_test = extract_features(model.backbone, test, **kw)
    return {
        "knn_top1": knn_accuracy(f_train, y_train, f_test, y_test, cfg.train.knn_k, cfg.train.knn_temperature),
        "knn1_top1": knn_accuracy(f_train, y_train, f_test, y_test, k=1, temperature=None),
    }


def pretrain(cfg: Config, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Pretrain ``cfg`` into ``out``; returns the last epoch's metrics row.

    Writes ``config.yaml``, ``run.json``, ``metrics.jsonl``, TensorBoard events and
    ``checkpoint.pt`` (every epoch, and on SIGINT/SIGTERM). ``resume=True`` continues from
    ``out/checkpoint.pt``; on CPU the result is bit-identical to an uninterrupted run.
    """
    keep_freed_memory()  # before the first large allocation: steps reuse their memory (train/memory.py)
    info = distributed.setup(cfg.train.device)
    try:
        return Trainer(cfg, Path(out), info, resume).train(progress)
    finally:
        distributed.teardown()


class Trainer:
    """Everything one run holds. ``__init__`` builds (and restores), :meth:`train` runs the epochs,
    :meth:`_epoch` the steps of one epoch, :meth:`_step` one optimizer step."""

    def __init__(self, cfg: Config, out: Path, info: distributed.DistInfo, resume: bool):
        self.cfg, self.out, self.info = cfg, out, info
        self.ckpt_path = out / CHECKPOINT
        tc, device = cfg.train, info.device
        self._check_start(resume)
        self.spec = cfg.method.spec()
        torch.manual_seed(tc.seed)

        # data
        self.train_set, self.test_set = load_datasets(cfg.data)
        if cfg.data.train_subset:
            self.train_set = self.train_set.subset(cfg.data.train_subset, seed=tc.seed)
        self.steps_per_epoch = len(self.train_set) // tc.batch_size
        if self.steps_per_epoch == 0:
            raise TrainingError(f"train.batch_size={tc.batch_size} exceeds the {len(self.train_set)} training images")
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.per_rank = tc.batch_size // info.world
        self.channels_last = (
            (device.type == "cuda" or tc.precision == "bf16") if tc.channels_last is None else tc.channels_last
        )
        self.aug = MultiViewAugment(cfg.data.resolved_recipe(), cfg.data.crop_size(), self.channels_last)

        # model, momentum target, optimizer; ``self.model`` stays unwrapped so checkpoint keys never
        # grow a ``module.`` prefix, ``self.net`` is what the step calls (DDP when distributed)
        model = SiameseNet(cfg.model, predictor=self.spec.predictor)
        if info.world > 1:
            model = distributed.convert_sync_batchnorm(model, device)
        self.model = model.to(
            device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format
        )
        self.target = MomentumTarget(self.model) if self.spec.target == "momentum" else None
        self.base_lr = cfg.optim.base_lr(tc.batch_size)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.base_lr)
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
        self.net: nn.Module = self.model
        if info.world > 1:
            ids = [device] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

        # where to start
        self.epoch, self.start_step, self.acc, self.gen_state = 0, 0, None, None
        if resume:
            self._restore()
        self.last_good = (
            f"{self.ckpt_path} (epoch {self.epoch}, step {self.start_step})"
            if resume
            else "none yet (no epoch finished)"
        )
        self.writer = self._open_outputs() if info.is_main else None

    def _check_start(self, resume: bool) -> None:
        tc, device = self.cfg.train, self.info.device
        if resume and not self.ckpt_path.is_file():
            raise TrainingError(f"--resume: no checkpoint at {self.ckpt_path}; start the run without --resume")
        if not resume and self.ckpt_path.exists():
            raise TrainingError(
                f"{self.out} already holds a run ({CHECKPOINT}); pass --resume to continue it or choose another --out"
            )
        if tc.precision == "fp16" and device.type != "cuda":
            raise TrainingError("train.precision=fp16 needs CUDA (it uses a grad scaler); use bf16 or fp32 on the CPU")
        if tc.batch_size % self.info.world:
            raise TrainingError(f"train.batch_size={tc.batch_size} must divide by the {self.info.world} processes")

    def _open_outputs(self) -> _Writer:
        self.out.mkdir(parents=True, exist_ok=True)
        print(f"siamkit: {self.spec.label} -> {self.out}/", file=sys.stderr)
        (self.out / "config.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        run_info = {
            "siamkit": siamkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(self.info.device),
            "machine": machine_name(self.info.device),
            "threads": torch.get_num_threads(),
            "malloc": keep_freed_memory(),
            "world_size": self.info.world,
            "per_rank_batch": self.per_rank,
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "train_images": len(self.train_set),
            "test_images": len(self.test_set),
            "method": self.spec.label,
            "views_drawn": self.spec.views_drawn,
            "channels_last": self.channels_last,
        }
        (self.out / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
        return _Writer(self.out, keep_epochs=-1 if self.from_nothing else self.epoch)

    @property
    def from_nothing(self) -> bool:
        """No checkpoint, or one saved before the first step: epoch 0 is measured (again)."""
        return self.epoch == 0 and self.start_step == 0

    # ---- checkpoints ----

    def _save(self, step_in_epoch: int = 0, acc: _Epoch | None = None, gens=None) -> None:
        """The whole state after ``self.epoch`` epochs and ``step_in_epoch`` more steps (rank 0)."""
        if not self.info.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "target": self.target.state_dict() if self.target is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": self.epoch * self.steps_per_epoch + step_in_epoch,
            "rng": _rng_state(),
            "epoch_state": acc.state() if acc is not None else None,
            "generators": gens,
            "config": self.cfg.to_dict(),
            "siamkit": siamkit.__version__,
        }
        save_atomic(state, self.ckpt_path)

    def _restore(self) -> None:
        ck = load_checkpoint(self.ckpt_path)  # on the CPU: RNG states must stay there
        self.model.load_state_dict(ck["model"])
        if self.target is not None:
            self.target.load_state_dict(ck["target"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        _set_rng_state(ck["rng"])
        self.epoch, self.start_step = ck["epoch"], ck["step_in_epoch"]
        if self.start_step:  # stopped inside an epoch: its running sums and generator states
            self.acc = _Epoch.from_state(ck["epoch_state"], self.info.device)
            self.gen_state = ck["generators"]

    # ---- the loop ----

    def _knn_at_init(self) -> None:
        """Epoch 0 of metrics.jsonl: the kNN monitor on the randomly initialised encoder, the
        baseline every comparison shows."""
        if self.writer is not None:
            knn = knn_monitor(self.model, self.train_set, self.test_set, self.cfg, self.info.device, self.channels_last)
            self.writer.write({"epoch": 0, "step": 0, **knn})
        distributed.barrier(self.info)

    def train(self, progress: bool = True) -> dict[str, Any]:
        tc = self.cfg.train
        bar = tqdm(
            total=self.total_steps,
            initial=self.epoch * self.steps_per_epoch + self.start_step,
            unit="step",
            dynamic_ncols=True,
            disable=not (progress and self.info.is_main),
            file=sys.stderr,
            smoothing=0.1,
        )
        row: dict[str, Any] = {}
        if self.from_nothing and tc.knn_every:
            self._knn_at_init()
        self.model.train()
        with _Signals() as signals:
            while self.epoch < tc.epochs:
                bar.set_description(f"{self.spec.label} epoch {self.epoch + 1}/{tc.epochs}")
                acc, lr = self._epoch(bar, signals)
                self.epoch += 1
                row = {
                    "epoch": self.epoch,
                    "step": self.epoch * self.steps_per_epoch,
                    **acc.means(self.info),
                    "lr": lr,
                    "img_per_s": acc.images / max(acc.seconds, 1e-9),
                    "seconds": acc.seconds,
                }
                if (steal := acc.steal_share()) is not None:
                    row["cpu_steal"] = steal
                if self.info.is_main and (self.epoch == tc.epochs or (tc.knn_every and self.epoch % tc.knn_every == 0)):
                    row.update(
                        knn_monitor(
                            self.model,
                            self.train_set,
                            self.test_set,
                            self.cfg,
                            self.info.device,
                            self.channels_last,
                        )
                    )
                distributed.barrier(self.info)
                if self.writer is not None:
                    self.writer.write(row)
                    bar.write(_summary(row, tc.epochs), file=sys.stderr)
                self._save()
                self.last_good = f"{self.ckpt_path} (after epoch {self.epoch})"
                self.start_step, self.acc, self.gen_state = 0, None, None
        bar.close()
        if self.writer is not None:
            self.writer.close()
        return row

    def _epoch(self, bar: tqdm, signals: _Signals) -> tuple[_Epoch, float]:
        """The steps of epoch ``self.epoch`` from ``self.start_step``; returns its sums and last lr."""
        tc, info = self.cfg.train, self.info
        g_aug, g_step = _generators(tc.seed, self.epoch, info.rank, info.device)
        if self.gen_state is not None:
            g_aug.set_state(self.gen_state["aug"])
            g_step.set_state(self.gen_state["step"].cpu())
        acc = self.acc or _Epoch()
        pending: list[tuple[int, Tensor]] = []  # (global step, loss) not yet checked for finiteness
        batches = train_batches(
            self.train_set,
            tc.batch_size,
            self.epoch,
            tc.seed,
            info.rank,
            info.world,
            self.start_step,
            info.device,
            self.cfg.data.num_workers,
        )
        lr = self.base_lr
        t0, cpu0 = time.perf_counter(), cpu_times()
        for k, x in enumerate(batches, start=self.start_step):
            global_step = self.epoch * self.steps_per_epoch + k
            lr = lr_at(self.cfg.optim, self.base_lr, global_step, self.steps_per_epoch, tc.epochs)
            metrics = self._step(x, global_step, lr, g_aug, g_step)
            acc.add(metrics, tc.batch_size)
            pending.append((global_step, metrics["loss"]))
            bar.update(1)
            if len(pending) >= tc.log_every or k + 1 == self.steps_per_epoch:
                _check_finite(pending, self.epoch, self.steps_per_epoch, self.last_good)
                rate = acc.images / max(acc.seconds + time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{pending[-1][1].item():+.4f}", img_s=f"{rate:.0f}", refresh=False)
                pending = []
            if distributed.any_rank(signals.signum is not None, info):
                _check_finite(pending, self.epoch, self.steps_per_epoch, self.last_good)
                acc.timed(t0, cpu0)
                self._save(k + 1, acc, {"aug": g_aug.get_state(), "step": g_step.get_state().cpu()})
                bar.close()
                raise Interrupted(
                    f"stopped by signal after step {k + 1} of epoch {self.epoch + 1}; "
                    f"checkpoint saved to {self.ckpt_path}. "
                    f"Resume with: siamkit pretrain --resume --out {self.out}"
                )
        acc.timed(t0, cpu0)
        return acc, lr

    def _step(self, x: Tensor, global_step: int, lr: float, g_aug, g_step) -> dict[str, Tensor]:
        """Augment this rank's rows of the global batch, one optimizer step, the target update."""
        tc, rank = self.cfg.train, self.info.rank
        set_lr(self.optimizer, lr, self.base_lr)
        params = self.aug.sample(tc.batch_size, self.spec.views_drawn, self.train_set.size, g_aug)
        views = self.aug.apply(x, params.rows(rank * self.per_rank, (rank + 1) * self.per_rank))  # (V, b, C, H, W)
        with _autocast(tc.precision, self.info.device):
            loss, metrics = step(self.net, self.spec, views, self.target, g_step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.target is not None:
            tau = tau_at(self.spec.tau_schedule, self.spec.tau, global_step + 1, self.total_steps)
            self.target.update(self.model, tau)
            metrics["tau"] = torch.tensor(tau, device=self.info.device)
        return metrics


def _check_finite(pending: list[tuple[int, Tensor]], epoch: int, steps_per_epoch: int, last_good: str) -> None:
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


def _summary(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['loss']:+.4f}", f"z_std {row['z_std']:.4f}"]
    if "knn_top1" in row:
        parts.append(f"kNN {row['knn_top1']:.1f}% (1-NN {row['knn1_top1']:.1f}%)")
    if "case0" in row:
        parts.append("cases " + "/".join(f"{row[f'case{i}']:.2f}" for i in range(4)))
    parts.append(f"{row['seconds']:.1f}s, {row['img_per_s']:.0f} img/s")
    if row.get("cpu_steal", 0) >= 0.01:  # a virtual machine's host took CPU time: the rate is low
        parts.append(f"(CPU steal {100 * row['cpu_steal']:.0f} %)")
    return "  ".join(parts)
