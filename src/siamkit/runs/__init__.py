"""The run folder: ``config.yaml``, ``run.json``, ``metrics.jsonl``, ``evals.jsonl`` and the
checkpoint, each with one reader and one writer, used by training, evaluation and the reports."""

from siamkit.runs.files import (
    CHECKPOINT_FORMAT,
    append_jsonl,
    checkpoint_file,
    load_checkpoint,
    read_jsonl,
    save_checkpoint,
    write_jsonl,
)
from siamkit.runs.folder import CHECKPOINT, CONFIG, EVALS, INFO, METRICS, RunFolder, RunRecord, load_run

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "CONFIG",
    "EVALS",
    "INFO",
    "METRICS",
    "RunFolder",
    "RunRecord",
    "append_jsonl",
    "checkpoint_file",
    "load_checkpoint",
    "load_run",
    "read_jsonl",
    "save_checkpoint",
    "write_jsonl",
]
