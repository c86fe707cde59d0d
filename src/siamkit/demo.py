"""``make demo``: pretrain simsiam-gsg on the embedded digits and compare with a random encoder.

With the whole training split as the kNN bank a random encoder already scores ~89 % on these
digits (neighbouring pixels nearly decide them), so the demo also measures kNN with a few labelled
images per class as the bank: the semi-supervised setting where learned features show.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from pathlib import Path

from siamkit.config import build_config
from siamkit.errors import ConfigError
from siamkit.evaluate import Encoder, knn, load_encoder, load_eval_data, random_spec
from siamkit.pipeline import pretrain
from siamkit.precision import resolve_precision
from siamkit.runs import RunFolder

FEW_PER_CLASS = 3  # labelled images per class in the few-label bank
DRAWS = (0, 1, 2)  # the seeds of the banks drawn; the demo prints their mean


def few_label_knn(enc: Encoder, k: int, per_class: int = FEW_PER_CLASS) -> float:
    """Weighted kNN top-1 on the digits test split with ``per_class`` labelled training images of
    each class as the bank, the mean over the banks drawn with :data:`DRAWS`."""
    data = load_eval_data("digits")
    fraction = per_class * len(data.train.classes) / len(data.train)
    scores = []
    for seed in DRAWS:
        few = dataclasses.replace(data, train=data.train.label_fraction(fraction, seed))
        scores.append(knn(enc, few, k=min(k, len(few.train)), weighted=True).top1)
    return statistics.fmean(scores)


def run_demo(out: Path, epochs: int | None = None, seed: int | None = None) -> int:
    values: dict[str, object] = {"method.name": "simsiam-gsg", "train.device": "cpu"}
    if epochs is not None:
        values["train.epochs"] = epochs
    if seed is not None:
        values["train.seed"] = seed
    cfg = build_config(values, preset="digits")
    if out.exists():
        if not (out / "config.yaml").exists():
            raise ConfigError(f"{out} exists and is not a siamkit run folder; pass another --out")
        shutil.rmtree(out)
    print(
        f"Pretraining {cfg.method.name} on the embedded digits (1,347 train / 450 test images), "
        f"{cfg.model.backbone} width {cfg.model.width}, {cfg.train.epochs} epochs, "
        f"{resolve_precision(cfg.train.precision, 'cpu')}, CPU, seed {cfg.train.seed}."
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
    pretrained = load_encoder(str(out))
    random_init = load_encoder(random_spec(cfg.model.backbone, cfg.model.width), seed=cfg.train.seed)
    bank = FEW_PER_CLASS * 10
    print(f"  with {FEW_PER_CLASS} labelled images per class as the bank ({bank}; mean of {len(DRAWS)} draws):")
    print(f"  {'random init':<28}{few_label_knn(random_init, k):>21.1f}%")
    print(f"  {'simsiam-gsg, pretrained':<28}{few_label_knn(pretrained, k):>21.1f}%")
    print()
    print(
        f"Pretraining took {minutes:.1f} min. The run's files are in {out}/: checkpoint.pt, metrics.jsonl "
        "(one line per epoch), config.yaml, run.json, tensorboard/."
    )
    return 0
