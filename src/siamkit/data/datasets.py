"""Datasets: CIFAR-10/100 (the official "python version" layout), image folders, and the embedded
digits. Every split becomes an :class:`ImageSet` of square RGB uint8 images, held in memory when
small, else a list of files that DataLoader workers decode."""

from __future__ import annotations

import hashlib
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from siamkit.data.images import IMAGE_EXTENSIONS, BadImageError, decode_image

if TYPE_CHECKING:
    from siamkit.config import DataConfig

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")


class DataError(Exception):
    """A dataset that cannot be used as given; the message says what to do."""


@dataclass
class ImageSet:
    """One labelled split. Exactly one of ``images`` (in memory) and ``files`` (streamed) is set."""

    name: str
    classes: list[str]
    labels: torch.Tensor  # (N,) int64
    size: int  # images are (3, size, size)
    images: torch.Tensor | None = None  # (N, 3, size, size) uint8
    files: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def subset(self, n: int, seed: int = 0) -> ImageSet:
        """A fixed, class-stratified subset of ``n`` images, so results on a subset are reproducible."""
        if n >= len(self):
            return self
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(self)), train_size=n, stratify=self.labels.numpy(), random_state=seed)
        keep = torch.from_numpy(np.sort(keep))
        return ImageSet(
            self.name,
            self.classes,
            self.labels[keep],
            self.size,
            images=None if self.images is None else self.images[keep],
            files=None if self.files is None else [self.files[i] for i in keep.tolist()],
        )


# ---- CIFAR ---------------------------------------------------------------------------------------

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
        with open(folder / f, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[spec["label_key"]], dtype=np.int64))
    with open(folder / meta_file, "rb") as fh:
        classes = [str(c) for c in pickle.load(fh, encoding="latin1")[meta_key]]
    return ImageSet(
        f"{name}/{split}",
        classes,
        torch.from_numpy(np.concatenate(ys)),
        32,
        images=torch.from_numpy(np.concatenate(xs)),
    )


# ---- digits (embedded) ---------------------------------------------------------------------------


def load_digits(split: str, size: int = 32) -> ImageSet:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes), a fixed
    stratified 75/25 train/test split (seed 0), upsampled bilinearly to ``size`` and made RGB."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = torch.from_numpy(data.images).float() * (255.0 / 16.0)  # (N, 8, 8), 0..16 -> 0..255
    idx_train, idx_test = train_test_split(np.arange(len(x)), test_size=0.25, stratify=data.target, random_state=0)
    idx = torch.from_numpy(idx_train if split == "train" else idx_test)
    x = torch.nn.functional.interpolate(x[idx, None], size=(size, size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(data.target[idx.numpy()]).long()
    return ImageSet(f"digits/{split}", [str(i) for i in range(10)], labels, size, images=x)


# ---- image folders -------------------------------------------------------------------------------


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


def load_datasets(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The train and held-out splits a :class:`~siamkit.config.DataConfig` names."""
    root = Path(cfg.data_root).expanduser() if cfg.data_root else None
    if cfg.dataset == "digits":
        size = cfg.decode_size()
        return load_digits("train", size), load_digits("test", size)
    if cfg.dataset in _CIFAR:
        if not root.is_dir() and not cfg.download:
            raise DataError(f"--data-root {root} does not exist (pass --download to fetch {cfg.dataset} there)")
        return (
            load_cifar(cfg.dataset, root, "train", cfg.download),
            load_cifar(cfg.dataset, root, "test", cfg.download),
        )
    if not root.is_dir():
        raise DataError(f"--data-root {root} does not exist; it must hold train/ and val/ (or test/) class folders")
    kw = dict(
        size=cfg.decode_size(),
        skip_bad=cfg.skip_bad_images,
        max_memory_gb=cfg.max_memory_gb,
        verify=cfg.verify_images,
    )
    train, test = load_imagefolder(root, "train", **kw), load_imagefolder(root, "val", **kw)
    check_same_classes(train, test)
    return train, test
