"""The papers' experiments as named, resumable entries: ``siamkit experiment NAME``.

An experiment is data: the runs it needs (method, seed, config overrides) and the evaluations to
run on each finished encoder. Runs are identified by what they train, so two experiments that
need the same run (table1's SimSiam is also fig. 4's) share one folder. The runner skips finished
runs and evaluations, resumes partial runs from their checkpoints, and can therefore be stopped
at any moment and started again.

A machine that trained runs may be gone before the suite ends (a session's files do not survive
it). With an archive (``--archive docs/results/runs``), each run's small records are copied there
as soon as its training and every evaluation it needs are done, and a run found finished in the
archive counts as done: committing the archive carries the suite over to the next machine. A run
needs every evaluation that any experiment reports of it, done while its checkpoint exists.
"""

from __future__ import annotations

import hashlib
import json
import shutil
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
    tsne: tuple[str, ...] = ()  # run ids whose t-SNE of the test features is drawn (tsne.png)


DIVERGED = "diverged.json"  # written when a run's loss became NaN/inf: a result, not a crash
TSNE = "tsne.png"
# What is archived of a run: everything but the weights (a few kB, and the t-SNE picture).
RECORDS = ("metrics.jsonl", "evals.jsonl", "config.yaml", "run.json", DIVERGED, TSNE)


def archive_run(run: Path, archive: Path) -> bool:
    """Copy the records of the run folder ``run`` into ``archive/<name>``; False if it has none."""
    present = [name for name in RECORDS if (run / name).exists()]
    if "metrics.jsonl" not in present and not (run.name.startswith("random-") and present):
        return False  # exported data, or a run that has not written a record yet
    (archive / run.name).mkdir(parents=True, exist_ok=True)
    for name in present:
        shutil.copyfile(run / name, archive / run.name / name)
    return True


def evals_for(spec: RunSpec, exp: Experiment, others: tuple[Experiment, ...] = ()) -> list[str]:
    """Every evaluation reported of this run by ``exp`` or any of ``others`` that shares it: all of
    them run while its checkpoint exists, so a later experiment never needs the weights."""
    sharing = [exp, *(e for e in others if spec in e.runs)]
    kinds = {k for e in sharing for k in e.evals}
    if any(spec.run_id in e.tsne for e in sharing):
        kinds.add("tsne")
    return sorted(kinds)


@dataclass
class RunStatus:
    spec: RunSpec
    path: Path
    epochs_done: int
    epochs: int
    evals_done: list[str] = field(default_factory=list)
    diverged: str | None = None  # the training error's message
    archived: bool = False  # found in the archive (records only, no checkpoint)

    @property
    def trained(self) -> bool:
        return self.epochs_done >= self.epochs


def run_status(spec: RunSpec, root: Path, protocol: dict[str, Any], archive: Path | None = None) -> RunStatus:
    """Where a run stands: its checkpoint under ``root``, else its records in ``archive``."""
    path = root / spec.run_id
    cfg = spec.config(protocol)
    archived = archive is not None and not (path / CHECKPOINT).exists() and (archive / spec.run_id).is_dir()
    if archived:
        path = archive / spec.run_id
        rows = [r for r in read_jsonl(path / "metrics.jsonl") if "epoch" in r]
        done = rows[-1]["epoch"] if rows else 0
    else:
        done = load_checkpoint(path)["epoch"] if (path / CHECKPOINT).exists() else 0
    evals = sorted({e["eval"] for e in read_jsonl(path / "evals.jsonl")})
    diverged = json.loads((path / DIVERGED).read_text())["error"] if (path / DIVERGED).exists() else None
    return RunStatus(spec, path, done, cfg.train.epochs, evals, diverged, archived)


def run_experiment(
    exp: Experiment,
    root: Path,
    protocol: dict[str, Any],
    eval_data: dict[str, dict[str, str]],
    dry_run: bool = False,
    log=print,
    archive: Path | None = None,
    others: tuple[Experiment, ...] = (),
) -> list[RunStatus]:
    """Train what is missing, then evaluate what is missing; returns every run's status.

    ``eval_data`` maps an evaluation to its dataset flags, e.g.
    ``{"linear": {"dataset": "cifar10", "data_root": ...}, "transfer": {...}}``. With ``archive``,
    runs finished there are skipped and each run is archived as soon as it is done. A run shared
    with ``others`` (the rest of the suite) also gets the evaluations they report of it.
    """
    from siamkit.train.loop import NonFiniteLoss, pretrain

    root.mkdir(parents=True, exist_ok=True)
    statuses = []
    for spec in exp.runs:
        st = run_status(spec, root, protocol, archive)
        needed = [k for k in evals_for(spec, exp, others) if k not in st.evals_done]
        if st.diverged:
            log(f"[{exp.name}] skip {spec.run_id}: diverged earlier ({st.diverged.splitlines()[0]})")
            statuses.append(st)
            continue
        if st.archived and st.trained and not needed:
            statuses.append(st)
            continue
        if st.archived:  # archived unfinished, or without an evaluation now needed: the weights are gone
            why = f"missing {', '.join(needed)}" if st.trained else f"epoch {st.epochs_done}/{st.epochs}"
            log(f"[{exp.name}] archived {spec.run_id} has no checkpoint ({why}): training it again")
            st = run_status(spec, root, protocol)
            needed = evals_for(spec, exp, others)
        if not st.trained:
            resume = (st.path / CHECKPOINT).exists()
            log(f"[{exp.name}] {'resume' if resume else 'train'} {spec.run_id}: epoch {st.epochs_done}/{st.epochs}")
            if not dry_run:
                try:
                    pretrain(spec.config(protocol), st.path, resume=resume)
                except NonFiniteLoss as e:  # e.g. reverse stop-gradient may blow up: record it, go on
                    (st.path / DIVERGED).write_text(json.dumps({"error": str(e)}))
                    log(f"[{exp.name}] {spec.run_id} diverged: {e}")
                    if archive is not None:
                        archive_run(st.path, archive)
                    statuses.append(run_status(spec, root, protocol))
                    continue
        for kind in needed:
            log(f"[{exp.name}] eval {kind} {spec.run_id}")
            if not dry_run:
                _evaluate(str(st.path), kind, eval_data[kind])
        if archive is not None and not dry_run:
            archive_run(st.path, archive)
        statuses.append(run_status(spec, root, protocol))
    if exp.random_baseline:
        _random_baseline(exp, root, protocol, eval_data, dry_run, log, archive)
    return statuses


def random_folder(protocol: dict[str, Any]) -> tuple[str, str]:
    """The random encoder of the protocol: its ``--checkpoint`` spec and its records' folder name."""
    cfg = build_config(protocol)
    width = f":{cfg.model.width}" if cfg.model.width else ""
    return f"random:{cfg.model.backbone}{width}", f"random-{cfg.model.backbone}{width.replace(':', '-w')}"


def _random_baseline(exp, root, protocol, eval_data, dry_run, log, archive) -> None:
    """The randomly initialised encoder's evaluations, kept in ``root/random-<backbone>/evals.jsonl``."""
    spec, name = random_folder(protocol)
    folder = root / name
    if archive is not None and not folder.exists() and (archive / name).exists():
        shutil.copytree(archive / name, folder)  # evaluated in an earlier session
    done = {e["eval"] for e in read_jsonl(folder / "evals.jsonl")}
    for kind in exp.evals:
        if kind not in done:
            log(f"[{exp.name}] eval {kind} {spec}")
            if not dry_run:
                result = _evaluate(spec, kind, eval_data[kind])
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / "evals.jsonl", "a") as f:
                    f.write(json.dumps(result) + "\n")
                if archive is not None:
                    archive_run(folder, archive)


def _evaluate(checkpoint: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
    """Run one ``siamkit eval`` in-process (its result is appended to the run's evals.jsonl)."""
    import contextlib
    import io

    from siamkit.cli import main

    argv = ["eval", kind, "--checkpoint", checkpoint, "--dataset", data["dataset"], "--json"]
    if data.get("data_root"):
        argv += ["--data-root", data["data_root"]]
    if kind == "tsne":
        argv += ["--png", str(Path(checkpoint) / TSNE)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"siamkit {' '.join(argv)} failed with exit code {code}")
    result = json.loads(buf.getvalue().strip().splitlines()[-1])
    if "top1" in result:
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
        "tsne": cifar,
        "transfer": {"dataset": "imagefolder", "data_root": str(data / "imagenette32")},
    }
