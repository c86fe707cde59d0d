"""The papers' experiments as named, resumable entries: ``siamkit experiment NAME``.

An experiment is data: the runs it needs (method, seed, config overrides) and the evaluations to
run on each finished encoder. Runs are identified by what they train, so two experiments that
need the same run (table1's SimSiam is also fig. 4's) share one folder. The runner skips finished
runs and evaluations, resumes partial runs from their checkpoints, and can therefore be stopped
at any moment and started again, across sessions.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siamkit.config import PRESETS, Config, build_config
from siamkit.evaluate.report import read_jsonl
from siamkit.train.checkpoint import CHECKPOINT, load_checkpoint


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
    notes: str = ""


DIVERGED = "diverged.json"  # written when a run's loss became NaN/inf: a result, not a crash


@dataclass
class RunStatus:
    spec: RunSpec
    path: Path
    epochs_done: int
    epochs: int
    evals_done: list[str] = field(default_factory=list)
    diverged: str | None = None  # the training error's message

    @property
    def trained(self) -> bool:
        return self.epochs_done >= self.epochs


def run_status(spec: RunSpec, root: Path, protocol: dict[str, Any]) -> RunStatus:
    path = root / spec.run_id
    cfg = spec.config(protocol)
    done = load_checkpoint(path)["epoch"] if (path / CHECKPOINT).exists() else 0
    evals = sorted({e["eval"] for e in read_jsonl(path / "evals.jsonl")})
    diverged = json.loads((path / DIVERGED).read_text())["error"] if (path / DIVERGED).exists() else None
    return RunStatus(spec, path, done, cfg.train.epochs, evals, diverged)


def run_experiment(
    exp: Experiment,
    root: Path,
    protocol: dict[str, Any],
    eval_data: dict[str, dict[str, str]],
    dry_run: bool = False,
    log=print,
) -> list[RunStatus]:
    """Train what is missing, then evaluate what is missing; returns every run's status.

    ``eval_data`` maps an evaluation to its dataset flags, e.g.
    ``{"linear": {"dataset": "cifar10", "data_root": ...}, "transfer": {...}}``.
    """
    from siamkit.train.loop import NonFiniteLoss, pretrain

    root.mkdir(parents=True, exist_ok=True)
    statuses = []
    for spec in exp.runs:
        st = run_status(spec, root, protocol)
        if st.diverged:
            log(f"[{exp.name}] skip {spec.run_id}: diverged earlier ({st.diverged.splitlines()[0]})")
            statuses.append(st)
            continue
        if not st.trained:
            resume = (st.path / CHECKPOINT).exists()
            log(f"[{exp.name}] {'resume' if resume else 'train'} {spec.run_id}: epoch {st.epochs_done}/{st.epochs}")
            if not dry_run:
                try:
                    pretrain(spec.config(protocol), st.path, resume=resume)
                except NonFiniteLoss as e:  # e.g. reverse stop-gradient may blow up: record it, go on
                    (st.path / DIVERGED).write_text(json.dumps({"error": str(e)}))
                    log(f"[{exp.name}] {spec.run_id} diverged: {e}")
                    statuses.append(run_status(spec, root, protocol))
                    continue
        for kind in exp.evals:
            if kind not in st.evals_done:
                log(f"[{exp.name}] eval {kind} {spec.run_id}")
                if not dry_run:
                    _evaluate(str(st.path), kind, eval_data[kind])
        statuses.append(run_status(spec, root, protocol))
    if exp.random_baseline:
        _random_baseline(exp, root, protocol, eval_data, dry_run, log)
    return statuses


def _random_baseline(exp, root, protocol, eval_data, dry_run, log) -> None:
    """The randomly initialised encoder's evaluations, kept in ``root/random-<backbone>/evals.jsonl``."""
    cfg = build_config(protocol)
    width = f":{cfg.model.width}" if cfg.model.width else ""
    spec = f"random:{cfg.model.backbone}{width}"
    folder = root / f"random-{cfg.model.backbone}{width.replace(':', '-w')}"
    done = {e["eval"] for e in read_jsonl(folder / "evals.jsonl")}
    for kind in exp.evals:
        if kind not in done:
            log(f"[{exp.name}] eval {kind} {spec}")
            if not dry_run:
                result = _evaluate(spec, kind, eval_data[kind])
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / "evals.jsonl", "a") as f:
                    f.write(json.dumps(result) + "\n")


def _evaluate(checkpoint: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
    """Run one ``siamkit eval`` in-process (its result is appended to the run's evals.jsonl)."""
    import contextlib
    import io

    from siamkit.cli import main

    argv = ["eval", kind, "--checkpoint", checkpoint, "--dataset", data["dataset"], "--json"]
    if data.get("data_root"):
        argv += ["--data-root", data["data_root"]]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"siamkit {' '.join(argv)} failed with exit code {code}")
    result = json.loads(buf.getvalue().strip().splitlines()[-1])
    print(f"  {kind}: top-1 {result['top1']:.2f}%", file=sys.stderr)
    return result


# ---- the papers' experiments at CPU scale ----------------------------------------------------------

# The CPU-scale protocol (issue 5): the `cpu` preset on the full CIFAR-10 training split for 5
# epochs (975 updates of 256 images), identical across methods (the GSG paper's rule: same number
# of updates and images per update). Measured on a 2-core machine: a SimSiam run trains in ~10
# minutes (plus ~15 s of kNN per epoch); GSG and K-view runs encode twice the views and take ~2.2x.
# The per-epoch kNN monitor uses a fixed 10,000-image stratified bank (the final evaluations use
# the full split).
PROTOCOL: dict[str, Any] = {
    **PRESETS["cpu"].values,
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
            evals=(),
        ),
    )
}


EXPORTED = {  # a shared dataset -> the file that exists once its export to the standard layout is complete
    "cifar10": Path("cifar-10-batches-py") / "test_batch",
    "imagenette32": Path("imagenette32") / ".complete",
}


def export_dataset(name: str, data: Path, shared: Path) -> None:
    """Export the packed dataset ``name`` from ``shared`` into ``data`` with its exporter, unless done."""
    import subprocess

    if (data / EXPORTED[name]).exists():
        return
    exporter = shared / "export.py"
    if not exporter.exists():
        raise FileNotFoundError(f"{exporter} not found: pass --shared, the folder of the packed datasets")
    subprocess.run([sys.executable, str(exporter), name, str(data)], check=True)


def prepare_data(root: Path, shared: Path) -> dict[str, dict[str, str]]:
    """Export the shared packed datasets to their standard layouts under ``root/data`` (once), and
    return the evaluation data of each evaluation kind."""
    data = root / "data"
    for name in EXPORTED:
        export_dataset(name, data, shared)
    cifar = {"dataset": "cifar10", "data_root": str(data)}
    return {
        "linear": cifar,
        "knn": cifar,
        "transfer": {"dataset": "imagefolder", "data_root": str(data / "imagenette32")},
    }
