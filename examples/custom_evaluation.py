"""Add an evaluation: nearest class centroid on frozen features, as a library call and as
``siamkit eval centroid``.

    python examples/custom_evaluation.py

An evaluation entry names a function ``run(encoder, data, *, device, precision, progress,
**options)`` that returns a typed result; its options become flags of ``siamkit eval NAME`` and
its result is printed, recorded in the run's ``evals.jsonl`` and usable from the experiment suite.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

import torch

from siamkit.cli import main as siamkit
from siamkit.evaluate import (
    EVALUATIONS,
    Encoder,
    EvalData,
    EvalResult,
    Evaluation,
    Option,
    extract_features,
    load_encoder,
    load_eval_data,
    register_evaluation,
)


@dataclass(frozen=True, kw_only=True)
class CentroidResult(EvalResult):
    kind: ClassVar[str] = "centroid"
    top1: float
    classes: int

    def summary(self) -> str:
        return f"nearest-centroid top-1 {self.top1:.2f}% over {self.classes} classes on {self.dataset}"


def centroid(
    enc: Encoder, data: EvalData, *, device="cpu", precision="fp32", progress=False, normalize=True
) -> CentroidResult:
    """Classify each test image by the closest class mean of the training features (cosine)."""
    recipe = enc.recipe or data.recipe
    kw = dict(recipe=recipe, size=data.size, device=device, precision=precision, normalize=normalize)
    f_train, y_train = extract_features(enc.backbone, data.train, **kw)  # (N, F), (N,)
    f_test, y_test = extract_features(enc.backbone, data.test, **kw)
    classes = int(y_train.max()) + 1
    means = torch.stack([f_train[y_train == c].mean(0) for c in range(classes)])  # (C, F)
    means = torch.nn.functional.normalize(means, dim=1)
    top1 = 100.0 * ((f_test @ means.T).argmax(1) == y_test).float().mean().item()
    about = {"checkpoint": enc.name, "dataset": data.name, "epoch": enc.epoch, "precision": precision}
    return CentroidResult(**about, top1=top1, classes=classes)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="random:resnet10_cifar:8", help="what to evaluate")
    args = parser.parse_args(argv)

    if "centroid" not in EVALUATIONS:
        register_evaluation(
            Evaluation(
                "centroid",
                centroid,
                "nearest class centroid on frozen features",
                (Option("normalize", bool, True, "L2-normalise the features first"),),
            )
        )
    result = centroid(load_encoder(args.checkpoint), load_eval_data("digits"))  # the library call
    print(result.summary())
    siamkit(["eval", "centroid", "--checkpoint", args.checkpoint, "--dataset", "digits"])  # the command
    return result.top1


if __name__ == "__main__":
    main()
