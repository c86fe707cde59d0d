"""What a run reads before its first step and writes into its folder at the start."""

from __future__ import annotations

import shutil
import sys
from typing import Any

import torch
from torch import nn

from siamkit import precision
from siamkit.config import Config
from siamkit.data import ImageSet, load_datasets, monitor_splits
from siamkit.errors import TrainingError
from siamkit.models import SiameseNet
from siamkit.models.init import InitReport, load_init
from siamkit.train import distributed
from siamkit.train.telemetry import MetricsLog, environment


def training_data(cfg: Config, info: distributed.DistInfo) -> tuple[ImageSet, tuple[ImageSet, ImageSet] | None]:
    """The training split (``data.train_subset`` applied) and, on rank 0 (the monitor's rank),
    the labelled (bank, query) splits the kNN monitor measures on, or ``None`` without any."""
    train, test = load_datasets(cfg.data)
    if cfg.data.train_subset is not None:
        train = train.subset(cfg.data.train_subset, seed=cfg.train.seed)
    return train, monitor_splits(cfg.data, train, test) if info.is_main else None


def build_network(cfg: Config, predictor: bool, resume: bool) -> tuple[SiameseNet, InitReport | None]:
    """The network, its backbone started from ``model.init`` on a fresh run (a resumed one takes
    every weight from its checkpoint), and what that load matched."""
    model = SiameseNet(cfg.model, predictor=predictor)
    if cfg.model.init is None or resume:
        return model, None
    return model, load_init(model.backbone, cfg.model.init, cfg.model.init_strict, model.parts.classifier)


def open_outputs(t: Any) -> MetricsLog:
    """Rank 0, for the :class:`~siamkit.train.trainer.Trainer` ``t``: the run folder with its
    config, ``run.json``, the list of skipped image files and the metrics log (cut back to the
    checkpoint's epoch on resume)."""
    t.folder.create()
    print(f"siamkit: {t.spec.label} -> {t.out}/", file=sys.stderr)
    if t.train_set.skipped:
        t.folder.write_skipped(t.train_set.skipped)
        print(
            f"siamkit: {len(t.train_set)} training images; {len(t.train_set.skipped)} unreadable file(s) "
            f"skipped, listed in {t.folder.file('skipped_images.tsv')}",
            file=sys.stderr,
        )
    if t.eval_splits is None:
        print(
            "siamkit: no labelled data to evaluate on (pass --eval-data DIR: train/<class>, val/<class> or a "
            "labels CSV); the monitor reports the collapse statistic z_std only",
            file=sys.stderr,
        )
    if t.init_report is not None:
        print(f"siamkit: {t.init_report.summary()}", file=sys.stderr)
    t.folder.write_config(t.cfg.to_dict())
    info = {**environment(t.info.device), "world_size": t.info.world, "per_rank_batch": t.per_rank}
    info.update(base_lr=t.base_lr, steps_per_epoch=t.steps_per_epoch, train_images=len(t.train_set))
    info.update(skipped_images=len(t.train_set.skipped), method=t.spec.label, views_drawn=t.spec.views_drawn)
    if t.init_report is not None:
        info.update(init=t.init_report.summary())
    if t.eval_splits is not None:
        info.update(knn_bank_images=len(t.eval_splits[0]), test_images=len(t.eval_splits[1]))
    t.folder.write_info({**info, "channels_last": t.channels_last, "precision": t.precision})
    return MetricsLog(t.folder, keep_epochs=None if t.from_nothing else t.epoch)


def compile_network(net: nn.Module, device: torch.device) -> nn.Module:
    """``torch.compile(net)``, one graph per crop size, once it is known to work here: Dynamo
    supports this Python, and on the CPU Inductor finds the C++ compiler it builds its kernels with."""
    from torch._dynamo import is_dynamo_supported  # imported only when compiling: it is slow to import

    if not is_dynamo_supported():
        raise TrainingError(f"train.compile=true: torch {torch.__version__} cannot compile on Python "
                            f"{sys.version.split()[0]}; set train.compile=false")  # fmt: skip
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise TrainingError("train.compile=true on the CPU needs a C++ compiler (c++, g++ or clang++ on the "
                            "PATH) to build its kernels; install one (e.g. apt-get install g++) or set "
                            "train.compile=false")  # fmt: skip
    if device.type == "cpu" and precision.cpu_is_avx2_only():
        raise TrainingError("train.compile=true on this CPU (AVX2, no AVX-512): torch 2.13's compiled training "
                            "step was seen to hang in oneDNN's convolution backward on an AVX2-only Zen 3, and "
                            "on the CPU compiling measured slower than eager (docs/speedrun.md); set "
                            "train.compile=false")  # fmt: skip
    return torch.compile(net, dynamic=False)
