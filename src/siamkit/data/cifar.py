"""CIFAR-10 and CIFAR-100 in the official "python version" layout, read as data.

The batches are pickles. They are read with :class:`_DataUnpickler`, which builds only what such a
file holds (dicts, lists, strings, numbers, bytes, plain NumPy arrays and scalars) and refuses every other
global, so a tampered file cannot run code. Files whose checksums differ from the official ones
(a re-encoded copy) are used with one warning.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from siamkit.data.imageset import ImageSet
from siamkit.errors import DataError

# What a CIFAR batch may reference: NumPy's array and scalar reconstruction, nothing else.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which a CIFAR batch never holds")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One CIFAR batch file as a dict, without running anything the file asks for."""
    try:
        with open(path, "rb") as fh:
            batch = _DataUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"{path} is not a CIFAR batch file ({e}); re-export or re-download the dataset") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR batch file (it holds a {type(batch).__name__}, not a dict)")
    return batch


def _field(batch: dict, key: str, path: Path, dtype) -> np.ndarray | list:
    if key not in batch:
        raise DataError(f"{path} is not a CIFAR batch file (no {key!r} entry)")
    value = batch[key]
    if dtype is None:
        return list(value)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise DataError(f"{path}: {key!r} holds objects, not numbers")
    return arr.astype(dtype, copy=False)


# The official archives and file checksums (https://www.cs.toronto.edu/~kriz/cifar.html).
_CIFAR = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        train=[
            (f"data_batch_{i}", md5)
            for i, md5 in enumerate(
                [
                    "c99cafc152244af753f735de768cd75f",
                    "d4bba439e000b95fd0a9bffe97cbabec",
                    "54ebc095f3ab1f0389bbae665268c751",
                    "634d18415352ddfa80567beed471001a",
                    "482c414d41f54cd18b22e5b47cb7c3cb",
                ],
                start=1,
            )
        ],
        test=[("test_batch", "40351d587109b95175f43aff81a1287e")],
        meta=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888", "label_names"),
        label_key="labels",
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
        train=[("train", "16019d7e3df5f24257cddd939b257f8d")],
        test=[("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
        meta=("meta", "7973b15100ade9c7d40fb424638fde48", "fine_label_names"),
        label_key="fine_labels",
    ),
}
_warned: set[str] = set()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_cifar(name: str, root: Path) -> None:
    """Fetch and extract the official archive into ``root``; a clear error when offline."""
    spec = _CIFAR[name]
    root.mkdir(parents=True, exist_ok=True)
    archive = root / Path(spec["url"]).name
    if not archive.exists():
        tmp = archive.with_suffix(".part")
        try:
            with urllib.request.urlopen(spec["url"], timeout=30) as r, open(tmp, "wb") as f:
                total = int(r.headers.get("Content-Length", 0)) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {name}") as bar:
                    for chunk in iter(lambda: r.read(1 << 20), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"could not download {spec['url']} ({e}). This machine seems to be offline: fetch the "
                f"archive elsewhere and extract it into {root}, so that {root / spec['folder']} exists."
            ) from None
        tmp.replace(archive)
    if _md5(archive) != spec["archive_md5"]:
        raise DataError(f"{archive} is not the official {name} archive (MD5 mismatch); delete it and retry")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")


def load_cifar(name: str, root: Path, split: str, download: bool = False) -> ImageSet:
    spec = _CIFAR[name]
    folder = root / spec["folder"]
    files = spec["train"] if split == "train" else spec["test"]
    if not all((folder / f).exists() for f, _ in files):
        if download:
            download_cifar(name, root)
        else:
            raise DataError(
                f"{name}: {folder} with {', '.join(f for f, _ in files)} not found. Pass --download to fetch "
                f"the official archive, or point --data-root at the folder that holds {spec['folder']}/ "
                f"(for the shared copy: python ../shared/data/export.py cifar10 DIR)."
            )
    meta_file, meta_md5, meta_key = spec["meta"]
    checked = [*files, (meta_file, meta_md5)]
    if str(folder) not in _warned and any(_md5(folder / f) != md5 for f, md5 in checked):
        _warned.add(str(folder))
        print(
            f"warning: {folder} differs from the official {name} files (checksums); using it as it is. "
            "Results on a re-encoded copy are not comparable to published numbers.",
            file=sys.stderr,
        )
    xs, ys = [], []
    for f, _ in files:
        batch = read_batch(folder / f)
        xs.append(_field(batch, "data", folder / f, np.uint8).reshape(-1, 3, 32, 32))
        ys.append(_field(batch, spec["label_key"], folder / f, np.int64))
    classes = [str(c) for c in _field(read_batch(folder / meta_file), meta_key, folder / meta_file, None)]
    return ImageSet(
        f"{name}/{split}",
        classes,
        torch.from_numpy(np.concatenate(ys)),
        32,
        images=torch.from_numpy(np.concatenate(xs)),
    )
