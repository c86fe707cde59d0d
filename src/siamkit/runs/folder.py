"""A run folder and its files: one reader and one writer for each.

| file | written by | what |
|---|---|---|
| ``config.yaml`` | pretraining | the resolved config (what was asked for) |
| ``run.json`` | pretraining | derived facts: device, machine, batch per rank, versions, source |
| ``metrics.jsonl`` | pretraining | one record per epoch (epoch 0: the kNN monitor at initialisation) |
| ``evals.jsonl`` | evaluations | one record per evaluation of the run's encoder |
| ``checkpoint.pt`` | pretraining | everything needed to resume, and to rebuild the model |
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siamkit.errors import RunFolderError
from siamkit.runs.files import append_jsonl, load_checkpoint, read_jsonl, save_checkpoint, write_jsonl

CONFIG, INFO, METRICS, EVALS, CHECKPOINT = "config.yaml", "run.json", "metrics.jsonl", "evals.jsonl", "checkpoint.pt"
LOCK = ".lock"


class RunFolder:
    """The files of one run folder (which need not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self):
        """Hold the folder's lock while a run writes to it: a second writer fails at once, naming
        the holder's pid. The lock is the operating system's (``flock``), so it ends with its
        process, however that dies: a lock left by a killed run is simply taken over."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): unlocked
            yield
            return
        self.create()
        with open(self.path / LOCK, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise RunFolderError(
                    f"{self.path} is in use by another run (pid {holder}); "
                    "wait for it to finish or choose another --out"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield
            finally:
                f.seek(0)
                f.truncate()
                fcntl.flock(f, fcntl.LOCK_UN)

    # config.yaml and run.json
    def write_config(self, config: dict[str, Any]) -> None:
        self.file(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        return _read_yaml(self.file(CONFIG))

    def write_info(self, info: dict[str, Any]) -> None:
        self.file(INFO).write_text(json.dumps(info, indent=2) + "\n")

    def write_skipped(self, skipped: list[tuple[str, str]]) -> None:
        """``skipped_images.tsv``: one unreadable image file per line, its path and the reason."""
        lines = [f"{path}\t{' '.join(why.split())}" for path, why in skipped]
        self.file("skipped_images.tsv").write_text("path\treason\n" + "".join(f"{x}\n" for x in lines))

    def read_info(self) -> dict[str, Any]:
        path = self.file(INFO)
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RunFolderError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None

    # metrics.jsonl
    def read_metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(METRICS))

    def append_metrics(self, row: dict[str, Any]) -> None:
        append_jsonl(self.file(METRICS), row)

    def keep_metrics(self, last_epoch: int | None) -> None:
        """Keep the records of epochs ``<= last_epoch`` (a resumed run: what its checkpoint holds);
        ``None`` removes them all (a run that starts from nothing)."""
        path = self.file(METRICS)
        if path.exists():
            keep = [] if last_epoch is None else [r for r in read_jsonl(path) if r.get("epoch", 0) <= last_epoch]
            write_jsonl(path, keep)

    # evals.jsonl
    def read_evals(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(EVALS))

    def append_eval(self, row: dict[str, Any]) -> None:
        append_jsonl(self.file(EVALS), row)

    # checkpoint.pt
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_checkpoint(state, self.checkpoint)

    def load_checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RunFolderError(f"{path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RunFolderError(f"{path} is not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} does not hold a config (a mapping of sections)")
    return data


@dataclass
class RunRecord:
    """What a finished or partial run left behind, read from its files alone (no checkpoint)."""

    path: Path
    config: dict[str, Any]
    info: dict[str, Any]
    metrics: list[dict[str, Any]]
    evals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.info.get('method', self.config['method']['name'])} ({self.path.name})"

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        pts = [(r["epoch"], r[key]) for r in self.metrics if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    @property
    def trained(self) -> list[dict[str, Any]]:
        """The rows of trained epochs (epoch 0 is the kNN monitor on the random initialisation)."""
        return [m for m in self.metrics if m["epoch"] > 0]

    def final(self, key: str) -> float | None:
        """``key`` on the last trained epoch that measured it."""
        rows = [m for m in self.trained if key in m]
        return rows[-1][key] if rows else None

    def init(self, key: str) -> float | None:
        """``key`` at epoch 0: the randomly initialised encoder."""
        return next((m.get(key) for m in self.metrics if m["epoch"] == 0), None)

    @property
    def train_seconds(self) -> float:
        return sum(m.get("seconds", 0.0) for m in self.trained)


def load_run(path: str | Path) -> RunRecord:
    folder = RunFolder(path)
    if not folder.file(CONFIG).exists() or not folder.file(METRICS).exists():
        raise RunFolderError(f"{folder.path} is not a siamkit run folder (no {CONFIG} and {METRICS})")
    return RunRecord(folder.path, folder.read_config(), folder.read_info(), folder.read_metrics(), folder.read_evals())
