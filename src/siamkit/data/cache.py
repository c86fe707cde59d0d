"""A folder of images decoded once, at one resolution, into a memory-mapped array on disk.

Decoding full-size photos every epoch would starve two CPU cores, so a folder is decoded once into
``images-*.u8``, a plain C-ordered ``(N, 3, S, S)`` uint8 array that :func:`numpy.memmap` maps back
without reading it (the operating system pages in the rows a batch touches, and shares them between
processes: DataLoader workers, DDP ranks, later runs). Beside it, ``index.json`` lists each source
file with its size and modification time, and the files that could not be decoded with the reason.

A later run rescans the folder (one ``stat`` per file) and reuses every row whose file is
unchanged; added or changed files are decoded, removed ones dropped. A build writes a new array
beside the old one and replaces it only when complete, under a lock, so a killed build or two runs
starting together never leave a half-written cache.

Why not a library format (HDF5, LMDB, WebDataset shards)? Each needs a dependency, and none beats
a raw array for what training needs here: random access to any row at memory speed, zero-copy into
a tensor. Compressed shards would trade disk for a decode per read, the cost this cache removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from siamkit.data.images import IMAGE_EXTENSIONS, decode_files
from siamkit.errors import DataError

CACHE_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One image file under a root: its path relative to the root, byte size, mtime (ns)."""

    rel: str
    size: int
    mtime_ns: int

    def key(self) -> tuple[str, int, int]:
        return (self.rel, self.size, self.mtime_ns)


def scan_images(root: Path) -> list[FileEntry]:
    """Every image file under ``root`` (any depth, extensions in any case), sorted by path.
    Hidden files and folders (a leading ``.``) are skipped."""
    found: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link, or removed while we looked
                continue
            found.append(FileEntry(os.path.relpath(path, root).replace(os.sep, "/"), st.st_size, st.st_mtime_ns))
    found.sort(key=lambda e: e.rel)
    return found


def default_cache_dir() -> Path:
    """``$SIAMKIT_CACHE``, else ``$XDG_CACHE_HOME/siamkit``, else ``~/.cache/siamkit``."""
    if env := os.environ.get("SIAMKIT_CACHE"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "siamkit"


@dataclass
class CachedFolder:
    """What :func:`cached_folder` returns: the decoded images, in the order of ``files``."""

    root: Path
    size: int
    images: np.ndarray  # (N, 3, S, S) uint8, memory-mapped copy-on-write
    files: list[str]  # relative to root, one per row
    bad: list[tuple[str, str]]  # (relative path, reason)
    path: Path  # the cache folder
    stats: dict[str, float] = field(default_factory=dict)  # scan_s, decoded, reused, build_s, img_s

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.images)


def _folder_key(root: Path, size: int) -> str:
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return f"{root.resolve().name or 'root'}-{digest}-{size}px"


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # no flock (Windows): builds are not serialised there
        yield
        return
    try:
        f = open(path, "a+")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise DataError(f"cannot write in the image cache {path.parent} ({e.strerror}); set data.cache_dir") from None
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)  # another build of this cache finishes first
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_index(path: Path, size: int) -> dict | None:
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("version") != CACHE_VERSION or index.get("size") != size:
        return None
    array = path.parent / str(index.get("array"))
    good = sum(1 for r in index.get("rows", []) if r >= 0)
    if not array.is_file() or array.stat().st_size != good * 3 * size * size:
        return None  # the array was deleted or cut short: rebuild
    return index


def _open(array: Path, n: int, size: int, mode: str) -> np.ndarray:
    if n == 0:
        return np.zeros((0, 3, size, size), dtype=np.uint8)
    return np.memmap(array, dtype=np.uint8, mode=mode, shape=(n, 3, size, size))


def _allocate(path: Path, nbytes: int) -> None:
    """Reserve the array's blocks up front: a full disk is then an error here, not a SIGBUS
    when a page of a sparse memory map is first written."""
    try:
        with open(path, "wb") as f:
            if nbytes and hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, nbytes)
            else:
                f.truncate(nbytes)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise DataError(
            f"cannot write the image cache {path} ({nbytes / 2**30:.2f} GiB): {e.strerror}; "
            "free space there or point data.cache_dir (or $SIAMKIT_CACHE) at a larger disk"
        ) from None


def cached_folder(
    root: str | Path, size: int, cache_dir: str | Path | None = None, progress: bool = True, threads: int | None = None
) -> CachedFolder:
    """The images under ``root`` decoded to ``size`` px (shorter side resized, centre square),
    from the cache under ``cache_dir`` (:func:`default_cache_dir` when ``None``), built or updated
    first when files were added, removed or changed."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    t0 = time.perf_counter()
    entries = scan_images(root)
    scan_s = time.perf_counter() - t0
    where = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = where / _folder_key(root, size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the image cache {folder} ({e.strerror}); set data.cache_dir") from None
    with _lock(folder / "lock"):
        index = _read_index(folder / "index.json", size)
        if index is None or [tuple(f) for f in index["entries"]] != [e.key() for e in entries]:
            stats = _build(root, size, entries, folder, index, progress, threads)
            index = _read_index(folder / "index.json", size)
            assert index is not None
        else:
            stats = {"decoded": 0, "reused": len(index["rows"]), "build_s": 0.0}
        rows = index["rows"]  # per entry: its row in the array, or -1 when it could not be decoded
        good = [e[0] for e, r in zip(index["entries"], rows, strict=True) if r >= 0]
        # mapped under the lock: a later rebuild may unlink this array, but a mapping outlives that
        images = _open(folder / index["array"], len(good), size, "c")
    bad = [(e[0], index["bad"][e[0]]) for e, r in zip(index["entries"], rows, strict=True) if r < 0]
    return CachedFolder(root, size, images, good, bad, folder, {"scan_s": scan_s, "files": len(entries), **stats})


def _build(
    root: Path, size: int, entries: list[FileEntry], folder: Path, old: dict | None, progress: bool, threads
) -> dict[str, float]:
    """Write ``images.u8`` and ``index.json`` for ``entries``, reusing ``old``'s unchanged rows."""
    t0 = time.perf_counter()
    old_rows: dict[tuple, int] = {}
    old_bad: dict[tuple, str] = {}
    if old is not None:
        for e, r in zip(old["entries"], old["rows"], strict=True):
            if r >= 0:
                old_rows[tuple(e)] = r
            else:
                old_bad[tuple(e)] = old["bad"][e[0]]
    old_array = folder / old["array"] if old is not None else None
    old_images = _open(old_array, max(old["rows"], default=-1) + 1, size, "r") if old_array else None
    todo = [i for i, e in enumerate(entries) if e.key() not in old_rows and e.key() not in old_bad]
    array = f"images-{time.time_ns()}.u8"  # a new name each build: the old index stays valid until replaced
    _allocate(folder / array, len(entries) * 3 * size * size)
    out = _open(folder / array, len(entries), size, "r+")
    ok = np.zeros(len(entries), dtype=bool)
    bad: dict[str, str] = {}
    for i, e in enumerate(entries):
        if (r := old_rows.get(e.key())) is not None:
            out[i] = old_images[r]
            ok[i] = True
        elif e.key() in old_bad:
            bad[e.rel] = old_bad[e.key()]

    bar = tqdm(
        total=len(todo),
        desc=f"caching {root.name} at {size} px",
        unit="img",
        disable=not progress or not todo,
        file=sys.stderr,
        leave=False,
    )
    for i, r in zip(todo, decode_files([root / entries[i].rel for i in todo], size, threads), strict=True):
        if isinstance(r, str):
            bad[entries[i].rel] = r
        else:
            out[i], ok[i] = r, True
        bar.update(1)
    bar.close()
    rows = np.full(len(entries), -1, dtype=np.int64)
    rows[ok] = np.arange(int(ok.sum()))
    n = int(ok.sum())
    for i in np.flatnonzero(ok):  # move the decoded rows up over the failed ones, in order
        if rows[i] != i:
            out[rows[i]] = out[i]
    if len(entries):
        out.flush()
    del out, old_images
    os.truncate(folder / array, n * 3 * size * size)
    index = {
        "version": CACHE_VERSION,
        "root": str(root.resolve()),
        "size": size,
        "array": array,
        "entries": [list(e.key()) for e in entries],
        "rows": rows.tolist(),
        "bad": bad,
    }
    tmp_index = folder / "index.json.tmp"
    tmp_index.write_text(json.dumps(index))
    os.replace(tmp_index, folder / "index.json")
    for stale in folder.glob("images-*.u8"):  # the replaced array, and any a killed build left
        if stale.name != array:
            stale.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    return {
        "decoded": len(todo),
        "reused": len(entries) - len(todo),
        "build_s": seconds,
        "img_s": len(todo) / seconds if seconds > 0 else 0.0,
    }
