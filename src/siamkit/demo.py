"""``make demo``: pretrain simsiam-gsg on the embedded digits and compare with a random encoder.

With the whole training split as the kNN bank a random encoder already scores ~93 % on these
digits (neighbouring pixels nearly decide them), which leaves pretraining almost nothing to show, so
the demo measures weighted kNN with two banks: a few labelled images per class (the
semi-supervised setting where learned features show) and the whole training split.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from pathlib import Path

from siamkit.config import build_config
from siamkit.errors import ConfigError
from siamkit.evaluate import Encoder, EvalData, knn, load_encoder, load_eval_data, random_spec
from siamkit.pipeline import pretrain
from siamkit.precision import resolve_precision

FEW_PER_CLASS = 3  # labelled images per class in the few-label bank
DRAWS = (0, 1, 2)  # the seeds of the banks drawn; the demo prints their mean


def few_label_knn(enc: Encoder, data: EvalData, k: int, per_class: int = FEW_PER_CLASS) -> float:
    """Weighted kNN top-1 on ``data``'s test split with ``per_class`` labelled training images of
    each class as the bank, the mean over the banks drawn with :data:`DRAWS`."""
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
    size = cfg.data.image_size
    print(
        f"Pretraining {cfg.method.name} on the embedded digits (1,347 train / 450 test images) at {size} px, "
        f"{cfg.model.backbone} width {cfg.model.width}, {cfg.train.epochs} epochs, "
        f"{resolve_precision(cfg.train.precision, 'cpu')}, CPU, seed {cfg.train.seed}."
    )
    t0 = time.perf_counter()
    pretrain(cfg, out)
    minutes = (time.perf_counter() - t0) / 60
    data = load_eval_data("digits", image_size=size)
    k = cfg.train.knn_k
    encoders = {
        "random init": load_encoder(random_spec(cfg.model.backbone, cfg.model.width), seed=cfg.train.seed),
        f"{cfg.method.name}, pretrained": load_encoder(str(out)),
    }
    few = {name: few_label_knn(enc, data, k) for name, enc in encoders.items()}
    full = {name: knn(enc, data, k=k, weighted=True).top1 for name, enc in encoders.items()}
    banks = (f"{FEW_PER_CLASS} labels per class", f"all {len(data.train):,} labels")
    print()
    print(f"Weighted kNN (k={k}) on the digits test split ({len(data.test)} images), frozen backbone features:")
    print(f"  {'encoder':<28}{banks[0]:>22}{banks[1]:>20}")
    for name in encoders:
        print(f"  {name:<28}{few[name]:>21.1f}%{full[name]:>19.1f}%")
    random_name, trained_name = encoders
    gains = few[trained_name] - few[random_name], full[trained_name] - full[random_name]
    print(f"  {'gain':<28}{gains[0]:>+22.1f}{gains[1]:>+20.1f}")
    print(
        f"  ({banks[0]}: {FEW_PER_CLASS * len(data.train.classes)} labelled training images as the bank, "
        f"the mean over {len(DRAWS)} drawn banks)"
    )
    print()
    print(
        f"Pretraining took {minutes:.1f} min. The run's files are in {out}/: checkpoint.pt, metrics.jsonl "
        "(one line per epoch), config.yaml, run.json, tensorboard/."
    )
    return 0
