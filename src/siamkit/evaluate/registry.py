"""The evaluation registry: ``siamkit eval NAME`` and the experiment suite look evaluations up here.

An :class:`Evaluation` names a function ``run(encoder, data, *, device, precision, progress,
**options) -> EvalResult`` and the options it takes beyond those; the command line turns each
:class:`Option` into a flag. Add one with :func:`register_evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from siamkit.errors import ConfigError
from siamkit.evaluate import api
from siamkit.evaluate.finetune import FinetuneConfig
from siamkit.evaluate.results import EvalResult
from siamkit.evaluate.transfer import WD_GRID
from siamkit.registry import EVALUATIONS


@dataclass(frozen=True)
class Option:
    """One option of an evaluation: ``--NAME`` on the command line, a keyword of ``run``."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    required: bool = False
    lo: float | None = None  # the smallest valid value of a number

    def check(self, value: Any) -> Any:
        """``value`` if valid, else a :class:`ConfigError` naming the flag."""
        if self.lo is not None and value is not None and (not math.isfinite(value) or value < self.lo):
            raise ConfigError(f"{self.flag} must be a finite number >= {self.lo:g}, got {value}")
        return value

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Evaluation:
    name: str
    run: Callable[..., EvalResult]
    help: str
    options: tuple[Option, ...] = ()
    progress: str = "bar"  # how ``run`` reports progress: "bar" (a flag) or "epochs" (a callback per step)
    steps: Callable[[dict[str, Any]], int] | None = None  # with "epochs": how many calls, from the options

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options if not o.required}


def register_evaluation(evaluation: Evaluation, replace: bool = False) -> Evaluation:
    """Add ``evaluation`` to the registry (``siamkit eval NAME``)."""
    return EVALUATIONS.register(evaluation.name, evaluation, replace=replace)


FEW_LABELS = (
    Option("label_fraction", float, None, "train on this fraction of the labels, balanced per class (0.01, 0.1)"),
    Option("seed", int, 0, "draws the label subset, the head's initial weights and the batch order", lo=0),
)

for _e in (
    Evaluation(
        "knn",
        api.knn,
        "k-nearest-neighbour accuracy (cosine similarity)",
        (
            Option("k", int, 1, "neighbours (1: GSG's CIFAR-10 number)", lo=1),
            Option("weighted", bool, False, "similarity-weighted vote (Wu et al. 2018)"),
            Option("temperature", float, 0.1, "temperature of the weighted vote", lo=1e-12),
        ),
    ),
    Evaluation(
        "linear",
        api.linear,
        "linear probe on the frozen backbone",
        (
            Option("epochs", int, None, "default: the protocol's 90", lo=1),
            Option(
                "protocol",
                str,
                "cifar",
                "cifar: SGD lr 30 batch 256 cosine; imagenet: LARS batch 4096",
                choices=("cifar", "imagenet"),
            ),
            Option("augment", bool, False, "train through the backbone on random crops and flips"),
            *FEW_LABELS,
        ),
        progress="epochs",
        steps=lambda o: o["epochs"] if o.get("epochs") is not None else api.PROBE_PRESETS[o["protocol"]].epochs,
    ),
    Evaluation(
        "finetune",
        api.finetune,
        "fine-tune the whole backbone with a linear head (SimCLR's protocol at CPU scale)",
        (
            Option("epochs", int, None, f"default {FinetuneConfig.epochs}", lo=1),
            Option("lr", float, None, f"learning rate x batch/256 (default {FinetuneConfig.lr})", lo=1e-12),
            *FEW_LABELS,
        ),
        progress="epochs",
        steps=lambda o: o["epochs"] if o.get("epochs") is not None else FinetuneConfig.epochs,
    ),
    Evaluation(
        "transfer",
        api.transfer,
        "logistic regression on frozen features (Ericsson et al. 2021)",
        progress="epochs",
        steps=lambda o: len(WD_GRID),
    ),
    Evaluation(
        "tsne",
        api.tsne,
        "t-SNE of the test features, coloured by class, as a PNG",
        (
            Option("png", str, None, "the picture to write", required=True),
            Option("points", int, 5000, "at most this many test images, stratified", lo=2),
        ),
    ),
):
    register_evaluation(_e)
