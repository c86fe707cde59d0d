"""Reading and writing the files of a run folder: append-only JSONL logs and atomic checkpoints.

JSONL logs (``metrics.jsonl``, ``evals.jsonl``) are appended one line per record. A kill or a
full disk can leave the last line torn; readers skip such a final line (and say so), while a bad
line anywhere else means the file was damaged and is an error naming the file and the line.
Checkpoints are written to a temporary file, flushed and renamed over the old one, so a crash
leaves either the old checkpoint or the new one; they are read as data only (``weights_only``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from siamkit.errors import CheckpointError, RunFolderError

CHECKPOINT_FORMAT = "siamkit-checkpoint-v1"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL log; ``[]`` when it does not exist. A torn last line is skipped with
    a note on stderr; a bad line before it raises :class:`RunFolderError`."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                print(f"note: {path}: skipped a torn last line {n} (what a killed write leaves)", file=sys.stderr)
                break
            raise RunFolderError(
                f"{path}, line {n}: not a JSON record ({e.msg}); the file is damaged. "
                "Remove or repair that line to use the run."
            ) from None
        if not isinstance(row, dict):
            raise RunFolderError(f"{path}, line {n}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one record. A log whose last line is torn is first cut back to its last full line, so
    the new record starts a line of its own."""
    path = Path(path)
    _drop_torn_tail(path)
    with _writing(path), open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Replace the log with ``rows``, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with _writing(path, tmp):
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a log whose last line has no newline back to its last full line (reads one byte when
    the log is whole, as it nearly always is)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with _writing(path), open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        f.truncate(f.read().rfind(b"\n") + 1)


@contextlib.contextmanager
def _writing(path: Path, tmp: Path | None = None):
    """Turn a full disk (or another OS error) into a one-line error naming the file; removes ``tmp``."""
    try:
        yield
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise RunFolderError(_os_error_text(e, path)) from None


def _os_error_text(e: OSError, path: Path) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device while writing {path}"
    return f"could not write {path}: {e.strerror or e}"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename). On failure the
    temporary file is removed and the previous checkpoint is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
        full = full or "No space left" in str(e) or "file write failed" in str(e)
        what = f"no space left on the device while writing {path}" if full else f"could not write {path} ({e})"
        raise CheckpointError(what) from None


def checkpoint_file(path: str | Path, name: str = "checkpoint.pt") -> Path:
    """A checkpoint file, or a run folder's ``checkpoint.pt``."""
    path = Path(path)
    return path / name if path.is_dir() else path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file (or a run folder's) as data: tensors, numbers, strings and plain
    containers only, never code. A damaged file or one that is not siamkit's is a clear error."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with _legacy_numpy_arrays():
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for a damaged or unsafe file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it holds Python objects other than tensors, numbers, strings and containers"
        raise CheckpointError(
            f"{path} cannot be read as a checkpoint ({reason}); siamkit loads checkpoints as data only"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a siamkit checkpoint")
    return state


def _legacy_numpy_arrays():
    """Checkpoints written by siamkit 0.1.0 hold NumPy's RNG state as an array: allow exactly the
    globals that rebuild a plain array (no code runs; object arrays still need blocked globals)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    return torch.serialization.safe_globals(allowed)
