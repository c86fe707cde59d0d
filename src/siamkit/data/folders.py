"""Folders of image files: unlabeled trees (``folder``), class folders (``imagefolder``), and the
labelled evaluation data beside them (``--eval-data``: class folders or a labels CSV).

Every loader decodes through :func:`decoded`: by default from the on-disk cache of
:mod:`siamkit.data.cache` (decoded once, memory-mapped), with ``data.cache=false`` into memory,
or streamed from the files when they do not fit in ``data.max_memory_gb``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from siamkit.data.cache import cached_folder, scan_images
from siamkit.data.images import IMAGE_EXTENSIONS, decode_files
from siamkit.data.imageset import ImageSet
from siamkit.errors import DataError
from siamkit.splits import stratified_split


@dataclass(frozen=True)
class Decoding:
    """How image files become arrays: the square ``size``, the cache (and where), and, without
    the cache, the in-memory limit and whether streamed files are checked before training."""

    size: int
    cache: bool = True
    cache_dir: str | None = None
    max_memory_gb: float = 4.0
    verify: bool = True
    progress: bool = True


@dataclass
class Decoded:
    """Images of a folder, one per readable file: in memory (``images``) or streamed (``images``
    is ``None``); ``files`` relative to the folder; ``bad`` the unreadable ones with the reason."""

    images: torch.Tensor | None
    files: list[str]
    bad: list[tuple[str, str]]


def _decode_all(root: Path, rels: list[str], size: int, progress: bool) -> tuple[list, list[tuple[str, str]]]:
    """Each of ``rels`` decoded (``None`` where it could not be), and the ``(rel, reason)`` of those."""
    out: list[np.ndarray | None] = []
    bad: list[tuple[str, str]] = []
    results = decode_files([root / rel for rel in rels], size)
    bar = tqdm(results, total=len(rels), desc=f"decode {root.name}", unit="img", leave=False, disable=not progress)
    for rel, r in zip(rels, bar, strict=True):
        if isinstance(r, str):
            bad.append((rel, r))
        out.append(None if isinstance(r, str) else r)
    return out, bad


def decoded(root: Path, how: Decoding) -> Decoded:
    """Every image file under ``root``, decoded to ``how.size`` (see :class:`Decoding`)."""
    if how.cache:
        cf = cached_folder(root, how.size, how.cache_dir, progress=how.progress)
        return Decoded(cf.tensor(), cf.files, cf.bad)
    rels = [e.rel for e in scan_images(root)]
    in_memory = len(rels) * 3 * how.size**2 <= how.max_memory_gb * 2**30
    if not in_memory and not how.verify:
        return Decoded(None, rels, [])
    arrays, bad = _decode_all(root, rels, how.size, how.progress)
    keep = [i for i, a in enumerate(arrays) if a is not None]
    images = torch.from_numpy(np.stack([arrays[i] for i in keep])) if in_memory and keep else None
    if in_memory and not keep:
        images = torch.zeros((0, 3, how.size, how.size), dtype=torch.uint8)
    return Decoded(images, [rels[i] for i in keep], bad)


def _listing(bad: list[tuple[str, str]], root: Path, n: int = 20) -> str:
    lines = "\n".join(f"  {root / rel}: {why}" for rel, why in bad[:n])
    return lines + (f"\n  ... and {len(bad) - n} more" if len(bad) > n else "")


def _image_set(name: str, root: Path, d: Decoded, keep: list[int], classes: list[str], labels: list[int], size: int):
    """An :class:`ImageSet` of rows ``keep`` of ``d`` (no copy when all rows are kept)."""
    label_t = torch.tensor(labels, dtype=torch.long)
    paths = [root / d.files[i] for i in keep]
    skipped = [(str(root / rel), why) for rel, why in d.bad]
    if d.images is None:
        return ImageSet(name, classes, label_t, size, files=paths, paths=paths, skipped=skipped)
    images = d.images if len(keep) == len(d.files) else d.images[torch.tensor(keep, dtype=torch.long)]
    return ImageSet(name, classes, label_t, size, images=images, paths=paths, skipped=skipped)


def load_folder(root: Path, how: Decoding, most_bad: float = 0.5) -> ImageSet:
    """Every image under ``root`` (flat or nested, no labels). Unreadable files are skipped and
    listed in the set's ``skipped``; when more than ``most_bad`` of the files, or all of them,
    are unreadable, the folder is refused."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"--data-root {root} is not a folder; point it at a folder of images (any layout)")
    d = decoded(root, how)
    total = len(d.files) + len(d.bad)
    if total == 0:
        exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise DataError(f"{root} holds no image files ({exts}, any case, at any depth)")
    if not d.files or len(d.bad) > most_bad * total:
        raise DataError(
            f"{len(d.bad)} of the {total} image files under {root} cannot be read, so little would be left "
            f"to train on; is it the right folder? The first of them:\n{_listing(d.bad, root)}"
        )
    if d.bad:
        print(f"warning: skipping {len(d.bad)} unreadable image file(s) of {total} under {root}", file=sys.stderr)
    n = len(d.files)
    return _image_set(root.name, root, d, list(range(n)), [], [-1] * n, how.size)


def _class_split(split_dir: Path, how: Decoding, skip_bad: bool) -> ImageSet:
    d = decoded(split_dir, how)
    classes = sorted({rel.split("/")[0] for rel in [*d.files, *(b[0] for b in d.bad)] if "/" in rel})
    if not classes:
        raise DataError(f"{split_dir} has no class folders holding images; expected {split_dir}/<class>/<image files>")
    if d.bad and not skip_bad:
        raise DataError(
            f"{len(d.bad)} unreadable image file(s) in {split_dir}:\n{_listing(d.bad, split_dir, 50)}\n"
            "Fix or remove them, or pass --set data.skip_bad_images=true to skip them."
        )
    if d.bad:
        print(
            f"warning: skipping {len(d.bad)} unreadable image file(s):\n{_listing(d.bad, split_dir, 50)}",
            file=sys.stderr,
        )
    index = {c: i for i, c in enumerate(classes)}
    keep = [i for i, rel in enumerate(d.files) if "/" in rel]  # loose files beside the class folders have no class
    labels = [index[d.files[i].split("/")[0]] for i in keep]
    return _image_set(f"{split_dir.parent.name}/{split_dir.name}", split_dir, d, keep, classes, labels, how.size)


def split_dirs(root: Path) -> tuple[Path, Path] | None:
    """``root/train`` and ``root/val`` (or ``root/test``) when both exist."""
    held_out = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
    return (root / "train", held_out) if held_out is not None and (root / "train").is_dir() else None


def load_imagefolder(root: Path, split: str, size: int, skip_bad: bool = False, **how) -> ImageSet:
    """``root/train/<class>/**/*`` or (``split="val"``) ``root/val/<class>/**/*`` (or ``test/``).
    Unreadable files stop the run with their paths listed, or are skipped (and listed) with
    ``skip_bad``. ``how``: the :class:`Decoding` fields other than ``size``."""
    dirs = split_dirs(root)
    split_dir = root / "train" if split == "train" else (dirs[1] if dirs else root / "val")
    if not split_dir.is_dir():
        want = "train/" if split == "train" else "val/ (or test/)"
        raise DataError(f"imagefolder: {split_dir} not found; --data-root must hold {want} with one folder per class")
    return _class_split(split_dir, Decoding(size=size, **how), skip_bad)


def load_labels_csv(path: Path, how: Decoding, held_out: float = 0.2, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A labels CSV: a header with ``path`` and ``label`` columns and optionally ``split``
    (``train`` or ``val``/``test``); paths relative to the CSV's folder. Without ``split``, a
    stratified ``held_out`` share (seeded) is the held-out split."""
    root = path.parent
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read the labels CSV {path}: {e}") from None
    missing = {"path", "label"} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{path}: a labels CSV needs a header with path and label columns (and optionally split)")
    for n, r in enumerate(rows, start=2):
        if not r["path"] or not r["label"] or r.get("split", "train") not in ("train", "val", "test", ""):
            raise DataError(f"{path}, line {n}: path and label must be set and split one of train, val, test: {r}")
    classes = sorted({r["label"] for r in rows})
    labels = np.array([classes.index(r["label"]) for r in rows])
    if "split" in rows[0]:
        train_i = np.array([i for i, r in enumerate(rows) if r["split"] in ("train", "")])
        test_i = np.array([i for i, r in enumerate(rows) if r["split"] in ("val", "test")])
    else:
        train_i, test_i = stratified_split(labels, test_size=held_out, seed=seed)
    rels = [r["path"] for r in rows]
    arrays, bad = _decode_all(root, rels, how.size, how.progress)
    if bad:
        raise DataError(f"{len(bad)} unreadable image file(s) listed in {path}:\n{_listing(bad, root)}")
    sets = []
    for name, idx in (("train", train_i), ("val", test_i)):
        if len(idx) == 0:
            raise DataError(f"{path}: no rows for the {name} split")
        images = torch.from_numpy(np.stack([arrays[i] for i in idx]))
        lab = torch.from_numpy(labels[idx]).long()
        sets.append(
            ImageSet(f"{path.stem}/{name}", classes, lab, how.size, images=images, paths=[root / rels[i] for i in idx])
        )
    return sets[0], sets[1]


def check_same_classes(train: ImageSet, test: ImageSet) -> None:
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        raise DataError(
            f"the train and validation class folders differ: only in train: {only_train or 'none'}; "
            f"only in validation: {only_test or 'none'}. Both splits need the same class folders."
        )
