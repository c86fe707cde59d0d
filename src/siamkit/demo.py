"""``make demo``: pretrain simsiam-gsg on the embedded digits and compare with a random encoder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from siamkit.config import build_config
from siamkit.data import load_datasets
from siamkit.models import SiameseNet
from siamkit.train.loop import knn_monitor, pretrain


def run_demo(out: Path, epochs: int | None = None) -> int:
    values: dict[str, object] = {"method.name": "simsiam-gsg", "train.device": "cpu"}
    if epochs:
        values["train.epochs"] = epochs
    cfg = build_config(values, preset="digits")
    if out.exists():
        if not (out / "config.yaml").exists():
            raise SystemExit(f"siamkit demo: {out} exists and is not a siamkit run; pass another --out")
        shutil.rmtree(out)
    print(
        f"Pretraining {cfg.method.name} on the embedded digits (1,347 train / 450 test images), "
        f"{cfg.model.backbone} width {cfg.model.width}, {cfg.train.epochs} epochs, "
        f"{cfg.train.precision}, CPU."
    )
    t0 = time.perf_counter()
    row = pretrain(cfg, out)
    minutes = (time.perf_counter() - t0) / 60

    torch.manual_seed(cfg.train.seed)
    random_net = SiameseNet(cfg.model)  # the same architecture, randomly initialised
    train, test = load_datasets(cfg.data)
    base = knn_monitor(random_net, train, test, cfg, torch.device("cpu"), channels_last=False)
    k = cfg.train.knn_k
    print()
    print(f"kNN accuracy on the digits test split ({len(test)} images), frozen backbone features:")
    print(f"  {'encoder':<28}{f'weighted kNN (k={k})':>22}{'1-NN':>10}")
    print(f"  {'random init':<28}{base['knn_top1']:>21.1f}%{base['knn1_top1']:>9.1f}%")
    print(f"  {'simsiam-gsg, pretrained':<28}{row['knn_top1']:>21.1f}%{row['knn1_top1']:>9.1f}%")
    print()
    print(
        f"Pretraining took {minutes:.1f} min. The run's files are in {out}/: checkpoint.pt, metrics.jsonl "
        "(one line per epoch), config.yaml, run.json, tensorboard/."
    )
    return 0
