"""The pretraining loop: read it top to bottom in :meth:`Trainer.train`.

Side effects live here and only here: logging, the monitor, checkpoints, signals. The step
itself (:func:`siamkit.train.step`) is pure.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from siamkit._version import __version__
from siamkit.config import Config
from siamkit.data import ImageSet, TrainingViews, loading_progress, train_batches
from siamkit.errors import CheckpointError, Interrupted, TrainingError
from siamkit.models import MomentumTarget, tau_at
from siamkit.precision import autocast, resolve_precision
from siamkit.runs import RunFolder
from siamkit.train import distributed
from siamkit.train.memory import keep_freed_memory
from siamkit.train.objective import step
from siamkit.train.optim import build_optimizer, lr_at, set_lr
from siamkit.train.setup import build_network, compile_network, open_outputs, training_data
from siamkit.train.signals import StopSignals
from siamkit.train.state import check_resumable, check_start, epoch_generators, rng_state, set_rng_state
from siamkit.train.telemetry import SECONDS_BAR, EpochMeter, check_finite, cpu_times, summary

# (backbone, bank split, query split) -> metrics such as {"knn_top1": ...}; run on rank 0 only
Monitor = Callable[[nn.Module, ImageSet, ImageSet], dict[str, float]]


def train(
    cfg: Config, out: str | Path, resume: bool = False, progress: bool = True, monitor: Monitor | None = None
) -> dict[str, Any]:
    """Pretrain ``cfg`` into the run folder ``out`` (holding its lock; ``checkpoint.pt`` every epoch
    and on SIGINT/SIGTERM); returns the last epoch's metrics record. ``resume=True`` continues from
    the checkpoint (on CPU bit-identical to an uninterrupted run). ``monitor`` runs at initialisation
    and on the epochs ``train.knn_every`` selects. A process of a DDP group that dies ends the others."""
    keep_freed_memory()  # before the first large allocation: steps reuse their memory (train/memory.py)
    info = distributed.setup(cfg.train.device)
    try:
        with RunFolder(out).locked() if info.is_main else contextlib.nullcontext(), loading_progress(progress):
            return Trainer(cfg, Path(out), info, resume, monitor).train(progress)
    except RuntimeError as e:
        if (lost := distributed.peer_lost(e, info, out)) is None:
            raise
        raise lost from None
    finally:
        distributed.teardown()


class Trainer:
    """Everything one run holds. ``__init__`` builds (and restores), :meth:`train` runs the epochs,
    :meth:`_epoch` the steps of one epoch, :meth:`_step` one optimizer step."""

    def __init__(self, cfg: Config, out: Path, info: distributed.DistInfo, resume: bool, monitor: Monitor | None):
        self.cfg, self.out, self.info, self.monitor = cfg, out, info, monitor
        self.folder = RunFolder(out)
        tc, device = cfg.train, info.device
        check_start(cfg, self.folder, info, resume)
        self.spec = cfg.method.spec()
        torch.manual_seed(tc.seed)

        # data: the training split, and (rank 0) the labelled splits the monitor measures on
        self.train_set, self.eval_splits = training_data(cfg, info)
        self.steps_per_epoch = len(self.train_set) // tc.batch_size
        if self.steps_per_epoch == 0:
            raise TrainingError(f"train.batch_size={tc.batch_size} exceeds the {len(self.train_set)} training images")
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.per_rank = tc.batch_size // info.world
        self.channels_last = tc.use_channels_last(device.type)
        self.precision = resolve_precision(tc.precision, device)  # "auto" settled once, not per step
        self.views = TrainingViews.from_config(cfg.data, self.channels_last)

        # model, momentum target, optimizer; ``self.model`` stays unwrapped so checkpoint keys never
        # grow a ``module.`` prefix, ``self.net`` is what the step calls (DDP when distributed)
        model, self.init_report = build_network(cfg, self.spec.predictor, resume)
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
        if tc.compile:  # the step calls the compiled wrapper; checkpoints keep ``self.model``'s keys
            self.net = compile_network(self.net, device)

        # where to start
        self.epoch, self.start_step, self.acc, self.gen_state = 0, 0, None, None
        self.trained = 0.0  # seconds of training so far (the budget's clock; not evaluation or saving)
        if resume:
            self._restore()
        where = f"{self.folder.checkpoint} (epoch {self.epoch}, step {self.start_step})"
        self.last_good = where if resume else "none yet (no epoch finished)"
        self.log = open_outputs(self) if info.is_main else None

    @property
    def from_nothing(self) -> bool:
        """No checkpoint, or one saved before the first step: epoch 0 is measured (again)."""
        return self.epoch == 0 and self.start_step == 0

    # ---- checkpoints ----

    def _save(self, step_in_epoch: int = 0, acc: EpochMeter | None = None, gens=None) -> None:
        """The whole state after ``self.epoch`` epochs and ``step_in_epoch`` more steps (rank 0)."""
        if not self.info.is_main:
            return
        try:
            self._write_checkpoint(step_in_epoch, acc, gens)
        except CheckpointError as e:
            kept = (
                f"the previous checkpoint is intact: {self.last_good}"
                if self.folder.has_checkpoint()
                else "no checkpoint had been written yet"
            )
            raise CheckpointError(f"{e}; {kept}") from None

    def _write_checkpoint(self, step_in_epoch: int, acc: EpochMeter | None, gens) -> None:
        self.folder.save_checkpoint(
            {
                "model": self.model.state_dict(),
                "target": self.target.state_dict() if self.target is not None else None,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "epoch": self.epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": self.epoch * self.steps_per_epoch + step_in_epoch,
                "rng": rng_state(),
                "epoch_state": acc.state() if acc is not None else None,
                "generators": gens,
                "config": self.cfg.to_dict(),
                "trained_seconds": self.trained,
                "siamkit": __version__,
            }
        )

    def _restore(self) -> None:
        ck = self.folder.load_checkpoint()  # on the CPU: RNG states must stay there
        check_resumable(ck, self.cfg, self.folder.checkpoint)
        self.model.load_state_dict(ck["model"])
        if self.target is not None:
            self.target.load_state_dict(ck["target"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        self.epoch, self.start_step, self.trained = ck["epoch"], ck["step_in_epoch"], ck.get("trained_seconds", 0.0)
        if self.start_step:  # stopped inside an epoch: its running sums and generator states
            self.acc = EpochMeter.from_state(ck["epoch_state"], self.info.device)
            self.gen_state = ck["generators"]

    # ---- the loop ----

    def _monitor(self) -> dict[str, float]:
        if self.monitor is None or self.eval_splits is None:
            return {}
        return self.monitor(self.model.backbone, *self.eval_splits)

    def train(self, progress: bool = True) -> dict[str, Any]:
        tc = self.cfg.train
        budget = tc.time_budget  # the bar counts training seconds under a budget, else steps
        bar = tqdm(
            total=self.total_steps if budget is None else budget,
            initial=self.epoch * self.steps_per_epoch + self.start_step if budget is None else self.trained,
            unit="step" if budget is None else "s",
            bar_format=None if budget is None else SECONDS_BAR,
            dynamic_ncols=True,
            disable=not (progress and self.info.is_main),
            file=sys.stderr,
            smoothing=0.1,
        )
        row: dict[str, Any] = {}
        if self.from_nothing and tc.knn_every and self.monitor is not None:
            if self.log is not None and self.eval_splits is not None:  # epoch 0: the random init, the baseline
                self.log.write({"epoch": 0, "step": 0, **self._monitor()})
            distributed.barrier(self.info)
        self.model.train()
        with StopSignals() as signals:
            while self.epoch < tc.epochs and not self.spent():
                bar.set_description(f"{self.spec.label} epoch {self.epoch + 1}/{tc.epochs}")
                acc, lr, steps = self._epoch(bar, signals)
                self.epoch += 1  # an epoch the budget cut short counts as the last one
                row = acc.row(self.epoch, (self.epoch - 1) * self.steps_per_epoch + steps, lr, self.trained, self.info)
                last = self.epoch == tc.epochs or self.spent()
                if self.info.is_main and (last or (tc.knn_every and self.epoch % tc.knn_every == 0)):
                    row.update(self._monitor())
                distributed.barrier(self.info)
                if self.log is not None:
                    self.log.write(row)
                    bar.write(summary(row, tc.epochs), file=sys.stderr)
                self._save()
                self.last_good = f"{self.folder.checkpoint} (after epoch {self.epoch})"
                self.start_step, self.acc, self.gen_state = 0, None, None
        bar.close()
        if self.log is not None:
            self.log.close()
        return row

    def spent(self) -> bool:
        """The time budget (when there is one) is used up."""
        return self.cfg.train.time_budget is not None and self.trained >= self.cfg.train.time_budget

    def progress(self) -> float | None:
        """The share of the time budget spent (``None``: schedules follow the steps)."""
        return None if self.cfg.train.time_budget is None else min(self.trained / self.cfg.train.time_budget, 1.0)

    def _epoch(self, bar: tqdm, signals: StopSignals) -> tuple[EpochMeter, float, int]:
        """The steps of epoch ``self.epoch`` from ``self.start_step`` (to the end, or until the
        budget is spent); returns its sums, the last lr and the steps it reached."""
        tc, info = self.cfg.train, self.info
        g_aug, g_step = epoch_generators(tc.seed, self.epoch, info.rank, info.device)
        if self.gen_state is not None:
            g_aug.set_state(self.gen_state["aug"])
            g_step.set_state(self.gen_state["step"].cpu())
        acc = self.acc or EpochMeter()
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
        lr, steps, trained0 = self.base_lr, self.start_step, self.trained
        t0, cpu0 = time.perf_counter(), cpu_times()
        for k, x in enumerate(batches, start=self.start_step):
            global_step = self.epoch * self.steps_per_epoch + k
            lr = lr_at(self.cfg.optim, self.base_lr, global_step, self.steps_per_epoch, tc.epochs, self.progress())
            metrics = self._step(x, global_step, lr, g_aug, g_step)
            acc.add(metrics, tc.batch_size)
            pending.append((global_step, metrics["loss"]))
            before, steps = self.trained, k + 1
            stop, self.trained = distributed.agree(
                signals.signum is not None, trained0 + time.perf_counter() - t0, info
            )
            bar.update(1 if tc.time_budget is None else min(self.trained, tc.time_budget) - min(before, tc.time_budget))
            if len(pending) >= tc.log_every or steps == self.steps_per_epoch or stop or self.spent():
                check_finite(pending, self.epoch, self.steps_per_epoch, self.last_good)
                rate = acc.images / max(acc.seconds + time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{pending[-1][1].item():+.4f}", img_s=f"{rate:.0f}", refresh=False)
                pending = []
            if stop:
                acc.timed(t0, cpu0)
                self._save(steps, acc, {"aug": g_aug.get_state(), "step": g_step.get_state().cpu()})
                bar.close()
                raise Interrupted(
                    f"stopped by signal after step {steps} of epoch {self.epoch + 1}; "
                    f"checkpoint saved to {self.folder.checkpoint}. "
                    f"Resume with: siamkit pretrain --resume --out {self.out}"
                )
            if self.spent():
                break
        acc.timed(t0, cpu0)
        return acc, lr, steps

    def _step(self, x: Tensor, global_step: int, lr: float, g_aug, g_step) -> dict[str, Tensor]:
        """Augment this rank's rows of the global batch, one optimizer step, the target update."""
        tc, rank = self.cfg.train, self.info.rank
        set_lr(self.optimizer, lr, self.base_lr)
        done = self.progress()
        self.views.main.size = self.cfg.data.crop_size_at(global_step / self.total_steps if done is None else done)
        rows = slice(rank * self.per_rank, (rank + 1) * self.per_rank)
        views, local = self.views.draw(x, tc.batch_size, self.spec.views_drawn, self.train_set.size, g_aug, rows)
        with autocast(self.precision, self.info.device):
            loss, metrics = step(self.net, self.spec, views, self.target, g_step, local)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.target is not None:
            tau = tau_at(self.spec.tau_schedule, self.spec.tau, global_step + 1, self.total_steps, self.progress())
            self.target.update(self.model, tau)
            metrics["tau"] = torch.tensor(tau, device=self.info.device)
        return metrics
