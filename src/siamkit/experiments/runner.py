"""Running the papers' experiments: ``siamkit experiment NAME``.

The runner skips finished runs and evaluations, resumes partial runs from their checkpoints, and
can therefore be stopped at any moment and started again. Runs are identified by what they
train, so two experiments that need the same run (table1's SimSiam is also fig. 4's) share one
folder.

A machine that trained runs may be gone before the suite ends. With an archive (``--archive
docs/results/runs``), each run's small records are copied there as soon as its training and every
evaluation it needs are done, and a run found finished in the archive counts as done: committing
the archive carries the suite over to the next machine. A run needs every evaluation that any
experiment reports of it, done while its checkpoint exists.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siamkit.config import build_config
from siamkit.errors import DataError, NonFiniteLoss
from siamkit.evaluate import (
    EVALUATIONS,
    Encoder,
    EvalResult,
    load_encoder,
    load_eval_data,
    random_encoder,
    random_folder_name,
    random_spec,
)
from siamkit.evaluate import record as record_eval
from siamkit.experiments.spec import Experiment, RunSpec
from siamkit.pipeline import pretrain
from siamkit.runs import CHECKPOINT, RunFolder, read_jsonl
from siamkit.train.distributed import resolve_device

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
        done = RunFolder(path).load_checkpoint()["epoch"] if (path / CHECKPOINT).exists() else 0
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
                evaluate(str(st.path), kind, eval_data[kind])
        if archive is not None and not dry_run:
            archive_run(st.path, archive)
        statuses.append(run_status(spec, root, protocol))
    if exp.random_baseline:
        _random_baseline(exp, root, protocol, eval_data, dry_run, log, archive)
    return statuses


def random_folder(protocol: dict[str, Any]) -> tuple[str, str]:
    """The random encoder of the protocol: its ``random:`` spec (for the log) and its records'
    folder name, which tells apart the same backbone built with other arguments."""
    m = build_config(protocol).model
    return random_spec(m.backbone, m.width), random_folder_name(m.backbone, m.width, m.backbone_args, m.small_stem)


def _random_baseline(exp, root, protocol, eval_data, dry_run, log, archive) -> None:
    """The randomly initialised encoder's evaluations, kept in ``root/random-<backbone>/evals.jsonl``."""
    spec, name = random_folder(protocol)
    folder = root / name
    if archive is not None and not folder.exists() and (archive / name).exists():
        shutil.copytree(archive / name, folder)  # evaluated on another machine
    done = {e["eval"] for e in read_jsonl(folder / "evals.jsonl")}
    for kind in exp.evals:
        if kind not in done:
            log(f"[{exp.name}] eval {kind} {spec}")
            if not dry_run:
                folder.mkdir(parents=True, exist_ok=True)
                m = build_config(protocol).model  # the runs' architecture: backbone_args and small_stem too
                encoder = random_encoder(m.backbone, m.width, m.backbone_args, m.small_stem)
                result = evaluate(encoder, kind, eval_data[kind], folder)
                record_eval(result, folder, with_time=False)
                if archive is not None:
                    archive_run(folder, archive)


def evaluate(checkpoint: str | Encoder, kind: str, data: dict[str, str], folder: Path | None = None) -> EvalResult:
    """Evaluate one encoder (a checkpoint or run folder, or one already built) with one registered
    evaluation at its default options; a run folder's result is appended to its ``evals.jsonl``.
    A t-SNE picture goes into the run folder, or ``folder`` for an encoder without one."""
    entry = EVALUATIONS.get(kind)
    encoder = checkpoint if isinstance(checkpoint, Encoder) else load_encoder(checkpoint)
    options = entry.defaults()
    if kind == "tsne":
        options["png"] = str((encoder.run_dir or folder or Path(".")) / TSNE)
    result = entry.run(
        encoder, load_eval_data(data["dataset"], data.get("data_root")), device=resolve_device("auto"), **options
    )
    if encoder.run_dir is not None and encoder.run_dir.is_dir():
        record_eval(result, encoder.run_dir)
    if hasattr(result, "top1"):
        print(f"  {kind}: top-1 {result.top1:.2f}%", file=sys.stderr)
    return result


EXPORTED = {  # a shared dataset -> the file that exists once its export to the standard layout is complete
    "cifar10": Path("cifar-10-batches-py") / "test_batch",
    "imagenette32": Path("imagenette32") / ".complete",
}


def export_dataset(name: str, data: Path, shared: Path) -> None:
    """Export the packed dataset ``name`` from ``shared`` into ``data`` with its exporter, unless done."""
    if (data / EXPORTED[name]).exists():
        return
    exporter = shared / "export.py"
    if not exporter.exists():
        raise DataError(f"{exporter} not found: pass --shared, the folder of the packed datasets")
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
