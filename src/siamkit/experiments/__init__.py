"""The papers' experiments as named, resumable entries: ``siamkit experiment NAME``."""

from siamkit.experiments.runner import (
    DIVERGED,
    EXPORTED,
    RECORDS,
    TSNE,
    RunStatus,
    archive_run,
    evals_for,
    evaluate,
    export_dataset,
    prepare_data,
    random_folder,
    run_experiment,
    run_status,
)
from siamkit.experiments.spec import EXPERIMENTS, NOPRED, PROTOCOL, Experiment, RunSpec

__all__ = [
    "DIVERGED",
    "EXPERIMENTS",
    "EXPORTED",
    "NOPRED",
    "PROTOCOL",
    "RECORDS",
    "TSNE",
    "Experiment",
    "RunSpec",
    "RunStatus",
    "archive_run",
    "evals_for",
    "evaluate",
    "export_dataset",
    "prepare_data",
    "random_folder",
    "run_experiment",
    "run_status",
]
