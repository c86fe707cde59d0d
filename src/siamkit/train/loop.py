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
from siamkit.models import MomentumTarget, SiameseNet, tau_at
from siamkit.train import distributed
from siamkit.train.checkpoint import load_checkpoint, save_atomic
from siamkit.train.optim import build_optimizer, lr_at, set_lr
from siamkit.train.step import step

CHECKPOINT = "checkpoint.pt"


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
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], device: torch.device) -> _Epoch:
        return cls({k: v.to(device) for k, v in s["sums"].items()}, s["steps"], s["images"], s["seconds"])


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
        self.path = out / "metrics.jsonl"
        if self.path.exists():  # drop rows of epochs the checkpoint does not hold (killed in between)
            rows = [json.loads(l) for l in self.path.read_text().splitlines() if l.strip()]
            kept = [r for r in rows if r.get("epoch", 0) <= keep_epochs]
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


def _generators(
    seed: int, epoch: int, rank: int, device: torch.device
) -> tuple[torch.Generator, torch.Generator]:
    """Per-epoch generators: augmentation parameters (CPU, the same on every rank: each rank applies
    its rows of the global batch) and GSG's pairing and random cases (per rank, on the device)."""
    g_aug = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    g_step = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch + 7_919 * (rank + 1))
    return g_aug, g_step


def knn_monitor(model: SiameseNet, train, test, cfg: Config, device, channels_last: bool) -> dict[str, float]:
    """Weighted kNN (k, T from the config) and 1-NN accuracy of the frozen backbone; the bank is the
    training split without augmentation (optionally a fixed subset)."""
    bank = (
        train.subset(cfg.train.knn_train_subset, seed=cfg.train.seed) if cfg.train.knn_train_subset else train
    )
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
        "knn_top1": knn_accuracy(
            f_train, y_train, f_test, y_test, cfg.train.knn_k, cfg.train.knn_temperature
        ),
        "knn1_top1": knn_accuracy(f_train, y_train, f_test, y_test, k=1, temperature=None),
    }


def pretrain(cfg: Config, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Pretrain ``cfg`` into ``out``; returns the last epoch's metrics row.

    Writes ``config.yaml``, ``run.json``, ``metrics.jsonl``, TensorBoard events and
    ``checkpoint.pt`` (every epoch, and on SIGINT/SIGTERM). ``resume=True`` continues from
    ``out/checkpoint.pt``; on CPU the result is bit-identical to an uninterrupted run.
    """
    out = Path(out)
    info = distributed.setup(cfg.train.device)
    try:
        return _pretrain(cfg, out, resume, progress, info)
    finally:
        distributed.teardown()


def _pretrain(
    cfg: Config, out: Path, resume: bool, progress: bool, info: distributed.DistInfo
) -> dict[str, Any]:
    device, tc = info.device, cfg.train
    ckpt_path = out / CHECKPOINT
    if resume and not ckpt_path.is_file():
        raise TrainingError(f"--resume: no checkpoint at {ckpt_path}; start the run without --resume")
    if not resume and ckpt_path.exists():
        raise TrainingError(
            f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue it or choose another --out"
        )
    if tc.precision == "fp16" and device.type != "cuda":
        raise TrainingError(
            "train.precision=fp16 needs CUDA (it uses a grad scaler); use bf16 or fp32 on the CPU"
        )
    if tc.batch_size % info.world:
        raise TrainingError(f"train.batch_size={tc.batch_size} must divide by the {info.world} processes")
    spec = cfg.method.spec()
    torch.manual_seed(tc.seed)

    # ---- data ----
    train_set, test_set = load_datasets(cfg.data)
    if cfg.data.train_subset:
        train_set = train_set.subset(cfg.data.train_subset, seed=tc.seed)
    steps_per_epoch = len(train_set) // tc.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(f"train.batch_size={tc.batch_size} exceeds the {len(train_set)} training images")
    total_steps = steps_per_epoch * tc.epochs
    per_rank = tc.batch_size // info.world
    channels_last = (
        tc.channels_last
        if tc.channels_last is not None
        else (device.type == "cuda" or tc.precision == "bf16")
    )
    aug = MultiViewAugment(cfg.data.resolved_recipe(), cfg.data.crop_size(), channels_last)

    # ---- model, target, optimizer ----
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = SiameseNet(cfg.model, predictor=spec.predictor)
    if info.world > 1:
        model = distributed.convert_sync_batchnorm(model, device)
    model.to(device, memory_format=memory_format)
    target = MomentumTarget(model) if spec.target == "momentum" else None
    base_lr = cfg.optim.base_lr(tc.batch_size)
    optimizer = build_optimizer(model, cfg.optim, base_lr)
    scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
    net: nn.Module = model
    if info.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )

    # ---- state to resume ----
    epoch, start_step, acc, gen_state = 0, 0, None, None
    if resume:
        ck = load_checkpoint(ckpt_path)  # on the CPU: RNG states must stay there
        model.load_state_dict(ck["model"])
        if target is not None:
            target.load_state_dict(ck["target"])
        optimizer.load_state_dict(ck["optimizer"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        _set_rng_state(ck["rng"])
        epoch, start_step = ck["epoch"], ck["step_in_epoch"]
        if start_step:
            acc, gen_state = _Epoch.from_state(ck["epoch_state"], device), ck["generators"]
    last_good = (
        f"{ckpt_path} (epoch {epoch}, step {start_step})" if resume else "none yet (no epoch finished)"
    )

    writer = None
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        run_info = {
            "siamkit": siamkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "world_size": info.world,
            "per_rank_batch": per_rank,
            "base_lr": base_lr,
            "steps_per_epoch": steps_per_epoch,
            "train_images": len(train_set),
            "test_images": len(test_set),
            "method": spec.label,
            "views_drawn": spec.views_drawn,
            "channels_last": channels_last,
        }
        (out / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
        writer = _Writer(out, keep_epochs=epoch)

    def save(epoch_done: int, step_in_epoch: int, acc_state=None, gens=None) -> None:
        if not info.is_main:
            return
        state = {
            "model": model.state_dict(),
            "target": target.state_dict() if target is not None else None,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "epoch": epoch_done,
            "step_in_epoch": step_in_epoch,
            "global_step": epoch_done * steps_per_epoch + step_in_epoch,
            "rng": _rng_state(),
            "epoch_state": acc_state,
            "generators": gens,
            "config": cfg.to_dict(),
            "siamkit": siamkit.__version__,
        }
        save_atomic(state, ckpt_path)

    bar = tqdm(
        total=total_steps,
        initial=epoch * steps_per_epoch + start_step,
        unit="step",
        dynamic_ncols=True,
        disable=not (progress and info.is_main),
        file=sys.stderr,
        smoothing=0.1,
    )
    row: dict[str, Any] = {}
    model.train()
    with _Signals() as signals:
        while epoch < tc.epochs:
            g_aug, g_step = _generators(tc.seed, epoch, info.rank, device)
            if gen_state is not None:
                g_aug.set_state(gen_state["aug"])
                g_step.set_state(gen_state["step"].cpu())
            acc = acc or _Epoch()
            bar.set_description(f"{spec.label} epoch {epoch + 1}/{tc.epochs}")
            pending: list[tuple[int, Tensor]] = []  # (global step, loss) not yet checked for finiteness
            batches = train_batches(
                train_set,
                tc.batch_size,
                epoch,
                tc.seed,
                info.rank,
                info.world,
                start_step,
                device,
                cfg.data.num_workers,
            )
            t0 = time.perf_counter()
            for k, x in enumerate(batches, start=start_step):
                global_step = epoch * steps_per_epoch + k
                lr = lr_at(cfg.optim, base_lr, global_step, steps_per_epoch, tc.epochs)
                set_lr(optimizer, lr, base_lr)
                params = aug.sample(tc.batch_size, spec.views_drawn, train_set.size, g_aug)
                views = aug.apply(
                    x, params.rows(info.rank * per_rank, (info.rank + 1) * per_rank)
                )  # (V, b, C, H, W)
                with _autocast(tc.precision, device):
                    loss, metrics = step(net, spec, views, target, g_step)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                if target is not None:
                    tau = tau_at(spec.tau_schedule, spec.tau, global_step + 1, total_steps)
                    target.update(model, tau)
                    metrics["tau"] = torch.tensor(tau, device=device)
                acc.add(metrics, tc.batch_size)
                pending.append((global_step, metrics["loss"]))
                bar.update(1)
                if len(pending) >= tc.log_every or k + 1 == steps_per_epoch:
                    _check_finite(pending, epoch, steps_per_epoch, last_good)
                    bar.set_postfix(loss=f"{pending[-1][1].item():+.4f}", lr=f"{lr:.3g}", refresh=False)
                    pending = []
                if distributed.any_rank(signals.signum is not None, info):
                    _check_finite(pending, epoch, steps_per_epoch, last_good)
                    acc.seconds += time.perf_counter() - t0
                    save(
                        epoch,
                        k + 1,
                        acc.state(),
                        {"aug": g_aug.get_state(), "step": g_step.get_state().cpu()},
                    )
                    bar.close()
                    raise Interrupted(
                        f"stopped by signal after step {k + 1} of epoch {epoch + 1}; "
                        f"checkpoint saved to {ckpt_path}. "
                        f"Resume with: siamkit pretrain --resume --out {out}"
                    )
            acc.seconds += time.perf_counter() - t0
            epoch += 1
            row = {
                "epoch": epoch,
                "step": epoch * steps_per_epoch,
                **acc.means(info),
                "lr": lr,
                "img_per_s": acc.images / max(acc.seconds, 1e-9),
                "seconds": acc.seconds,
            }
            if info.is_main and (epoch == tc.epochs or (tc.knn_every and epoch % tc.knn_every == 0)):
                row.update(knn_monitor(model, train_set, test_set, cfg, device, channels_last))
            distributed.barrier(info)
            if writer is not None:
                writer.write(row)
                bar.write(_summary(row, tc.epochs), file=sys.stderr)
            save(epoch, 0)
            last_good = f"{ckpt_path} (after epoch {epoch})"
            start_step, acc, gen_state = 0, None, None
    bar.close()
    if writer is not None:
        writer.close()
    return row


def _check_finite(
    pending: list[tuple[int, Tensor]], epoch: int, steps_per_epoch: int, last_good: str
) -> None:
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
    return "  ".join(parts)
