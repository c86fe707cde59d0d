"""Image folders: ``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test/``)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from siamkit.data.images import IMAGE_EXTENSIONS, BadImageError, decode_image
from siamkit.data.imageset import ImageSet
from siamkit.errors import DataError


def scan_folder(split_dir: Path) -> tuple[list[str], list[Path], list[int]]:
    """``split_dir/<class>/**/<image>`` -> sorted class names, files, labels."""
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{split_dir} has no class folders; expected {split_dir}/<class>/<image files>")
    files, labels = [], []
    for c, name in enumerate(classes):
        found = sorted(p for p in (split_dir / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        files += found
        labels += [c] * len(found)
    if not files:
        raise DataError(f"{split_dir}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in its class folders")
    return classes, files, labels


def _decode_all(files: list[Path], size: int, desc: str) -> tuple[list[np.ndarray | None], list[BadImageError]]:
    def one(path: Path) -> np.ndarray | BadImageError:
        try:
            return decode_image(path, size)
        except BadImageError as e:
            return e

    out: list[np.ndarray | None] = []
    bad: list[BadImageError] = []
    with ThreadPoolExecutor(max_workers=min(8, (torch.get_num_threads() or 1) * 2)) as pool:
        for r in tqdm(pool.map(one, files, chunksize=64), total=len(files), desc=desc, unit="img", leave=False):
            if isinstance(r, BadImageError):
                bad.append(r)
                out.append(None)
            else:
                out.append(r)
    return out, bad


def load_imagefolder(
    root: Path,
    split: str,
    size: int,
    skip_bad: bool = False,
    max_memory_gb: float = 4.0,
    verify: bool = True,
) -> ImageSet:
    """``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test/``).

    Images are decoded to RGB, resized (shorter side) and centre-cropped to ``size``. When the split
    fits in ``max_memory_gb`` it is decoded once into memory; otherwise files are streamed by
    DataLoader workers, after a verification pass (``verify``) that decodes every file once so that
    bad files are found before training starts. Bad files stop the run with their paths listed, or
    are skipped (and listed) with ``skip_bad``.
    """
    if split == "train":
        split_dir = root / "train"
    else:
        split_dir = next((root / s for s in ("val", "test") if (root / s).is_dir()), root / "val")
    if not split_dir.is_dir():
        want = "train/" if split == "train" else "val/ (or test/)"
        raise DataError(f"imagefolder: {split_dir} not found; --data-root must hold {want} with one folder per class")
    classes, files, labels = scan_folder(split_dir)
    in_memory = len(files) * 3 * size * size <= max_memory_gb * 2**30
    bad: list[BadImageError] = []
    arrays: list[np.ndarray | None] = []
    if in_memory or verify:
        arrays, bad = _decode_all(files, size, f"decode {split_dir.name}")
    if bad:
        listing = "\n".join(f"  {e.path}: {e.reason}" for e in bad[:50])
        more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
        if not skip_bad:
            raise DataError(
                f"{len(bad)} unreadable image file(s) in {split_dir}:\n{listing}{more}\n"
                "Fix or remove them, or pass --set data.skip_bad_images=true to skip them."
            )
        print(f"warning: skipping {len(bad)} unreadable image file(s):\n{listing}{more}", file=sys.stderr)
    keep = [i for i in range(len(files)) if not arrays or arrays[i] is not None]
    label_t = torch.tensor([labels[i] for i in keep], dtype=torch.long)
    name = f"{root.name}/{split_dir.name}"
    if in_memory:
        images = torch.from_numpy(np.stack([arrays[i] for i in keep]))
        return ImageSet(name, classes, label_t, size, images=images)
    return ImageSet(name, classes, label_t, size, files=[files[i] for i in keep])


def check_same_classes(train: ImageSet, test: ImageSet) -> None:
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        raise DataError(
            f"the train and validation class folders differ: only in train: {only_train or 'none'}; "
            f"only in validation: {only_test or 'none'}. Both splits need the same class folders."
        )
