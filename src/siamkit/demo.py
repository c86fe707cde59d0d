"""``make demo``: pretrain simsiam-gsg on the embedded digits and compare with a random encoder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from siamkit.config import build_config
from siamkit.errors import ConfigError
from siamkit.pipeline import pretrain
from siamkit.precision import resolve_precision
from siamkit.runs import RunFolder


def run_demo(out: Path, epochs: int | None = None) -> int:
    values: dict[str, object] = {"method.name": "simsiam-gsg", "train.device": "cpu"}
    if epochs is not None:
        values["train.epochs"] = epochs
    cfg = build_config(values, preset="digits")
    if out.exists():
        if not (out / "config.yaml").exists():
            raise ConfigError(f"{out} exists and is not a siamkit run folder; pass another --out")
        shutil.rmtree(out)
    print(
        f"Pretraining {cfg.method.name} on the embedded digits (1,347 train / 450 test images), "
        f"{cfg.model.backbone} width {cfg.model.width}, {cfg.train.epochs} epochs, "
        f"{resolve_precision(cfg.train.precision, 'cpu')}, CPU."
    )
    t0 = time.perf_counter()
    row = pretrain(cfg, out)
    minutes = (time.perf_counter() - t0) / 60
    # epoch 0 of metrics.jsonl: the same network before training (random initialisation)
    folder = RunFolder(out)
    base = next(r for r in folder.read_metrics() if r["epoch"] == 0)
    test_size = folder.read_info()["test_images"]
    k = cfg.train.knn_k
    print()
    print(f"kNN accuracy on the digits test split ({test_size} images), frozen backbone features:")
    print(f"  {'encoder':<28}{f'weighted kNN (k={k})':>22}{'1-NN':>10}")
    print(f"  {'random init':<28}{base['knn_top1']:>21.1f}%{base['knn1_top1']:>9.1f}%")
    print(f"  {'simsiam-gsg, pretrained':<28}{row['knn_top1']:>21.1f}%{row['knn1_top1']:>9.1f}%")
    print()
    print(
        f"Pretraining took {minutes:.1f} min. The run's files are in {out}/: checkpoint.pt, metrics.jsonl "
        "(one line per epoch), config.yaml, run.json, tensorboard/."
    )
    return 0
