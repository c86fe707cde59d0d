"""The papers' experiments as data: the runs each needs and the evaluations of each run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from siamkit.config import PRESETS, Config, build_config


@dataclass(frozen=True)
class RunSpec:
    """One pretraining run: a method, a seed and config overrides on top of the protocol."""

    method: str
    seed: int = 0
    overrides: tuple[tuple[str, Any], ...] = ()
    tag: str = ""  # a readable suffix for the folder name, e.g. "nopred"
    epoch_factor: float = 1.0  # x the protocol's epochs: "equal compute" baselines train longer

    @property
    def group(self) -> str:
        """What is trained, without the seed: one row of a results table."""
        key = (sorted(self.overrides), self.epoch_factor)
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:6] if key != ([], 1.0) else ""
        return "-".join([self.method, *(p for p in (self.tag, digest) if p)])

    @property
    def run_id(self) -> str:
        """Folder name: readable, and unique for what is trained."""
        return f"{self.group}-s{self.seed}"

    def config(self, protocol: dict[str, Any]) -> Config:
        values = {**protocol, "method.name": self.method, "train.seed": self.seed, **dict(self.overrides)}
        if self.epoch_factor != 1.0:
            values["train.epochs"] = round(build_config(protocol).train.epochs * self.epoch_factor)
        return build_config(values)


@dataclass(frozen=True)
class Experiment:
    name: str
    claim: str
    runs: tuple[RunSpec, ...]
    evals: tuple[str, ...] = ("linear",)  # on each finished run: linear, transfer
    random_baseline: bool = True  # evaluate the randomly initialised encoder too
    tsne: tuple[str, ...] = ()  # run ids whose t-SNE of the test features is drawn (tsne.png)


# ---- the papers' experiments at CPU scale ----------------------------------------------------------

# The CPU-scale protocol: the `cpu` preset on the full CIFAR-10 training split for 5
# epochs (975 updates of 256 images), identical across methods (the GSG paper's rule: same number
# of updates and images per update). Measured on a 2-core machine: a SimSiam run trains in ~10
# minutes (plus ~15 s of kNN per epoch); GSG and K-view runs encode twice the views and take ~2.2x.
# The per-epoch kNN monitor uses a fixed 10,000-image stratified bank (the final evaluations use
# the full split).
PROTOCOL: dict[str, Any] = {
    **PRESETS["cpu"].values,
    "train.precision": "bf16",  # the recorded suite ran in bf16 (the preset's "auto" depends on the CPU)
    "data.dataset": "cifar10",
    "train.epochs": 5,
    "train.knn_every": 1,
    "train.knn_train_subset": 10_000,
}


def _runs(methods: list[str], seeds: tuple[int, ...] = (0,), **kw) -> tuple[RunSpec, ...]:
    """Seed-major, so a suite stopped early has every method's first seed."""
    return tuple(RunSpec(m, s, **kw) for s in seeds for m in methods)


NOPRED = (("method.predictor", False),)

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "table1",
            "GSG Table 1: GSG improves SimSiam and BYOL (kNN k=1, weighted kNN, linear probe)",
            _runs(["simsiam", "simsiam-gsg", "byol", "byol-gsg"], (0, 1)) + _runs(["simsiam", "simsiam-gsg"], (2,)),
            evals=("linear", "transfer"),
            tsne=("simsiam-s0", "simsiam-gsg-s0"),
        ),
        Experiment(
            "guiding",
            "GSG fig. 4: guided > original = random >> reverse (SimSiam collapses with reverse)",
            _runs(["simsiam", "simsiam-gsg", "simsiam-gsg-random", "simsiam-gsg-reverse"]),
            evals=(),
        ),
        Experiment(
            "collapse",
            "GSG fig. 5: without a predictor SimSiam and BYOL collapse, their GSG versions do not",
            _runs(["simsiam", "simsiam-gsg", "byol", "byol-gsg"], overrides=NOPRED, tag="nopred"),
            evals=(),
        ),
        Experiment(
            "ensemble",
            "EnSiam: an ensemble target beats SimSiam and SimSiam K-aug, also at equal compute",
            (
                *_runs(["simsiam", "simsiam-kaug", "ensiam", "byol-ensemble"]),
                RunSpec("ensiam", 0, (("method.leave_one_out", True),), tag="loo"),
                RunSpec("simsiam", 0, tag="2x", epoch_factor=2.0),  # K = 4 encodes twice SimSiam's views
            ),
            evals=("linear", "transfer"),
        ),
        Experiment(
            "transfer",
            "GSG Table 2: GSG encoders transfer better (logistic regression on Imagenette)",
            _runs(["simsiam", "simsiam-gsg", "byol", "byol-gsg"], (0, 1))
            + _runs(["simsiam", "simsiam-gsg"], (2,))
            + _runs(["simsiam-kaug", "ensiam", "byol-ensemble"]),
            evals=("transfer",),
        ),
        Experiment(
            "shared-views",
            "siamkit's option: GSG reusing the partner's views is as good as the paper's form",
            (
                *_runs(["simsiam-gsg"]),
                RunSpec("simsiam-gsg", 0, (("method.shared_views", True),), tag="shared"),
                # equal wall time: the shared form encodes half the views, so it gets twice the epochs
                RunSpec("simsiam-gsg", 0, (("method.shared_views", True),), tag="shared-2x", epoch_factor=2.0),
            ),
            evals=("linear",),
        ),
    )
}
