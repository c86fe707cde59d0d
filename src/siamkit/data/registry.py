"""The dataset registry: a name -> how to load its train and held-out splits.

Add one with :func:`register_dataset`; ``--dataset NAME`` then finds it, and every command that
takes a dataset (pretraining, the kNN monitor, ``siamkit eval``) can use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from siamkit.config import DataConfig
from siamkit.data.cifar import load_cifar
from siamkit.data.digits import load_digits
from siamkit.data.folders import Decoding, check_same_classes, load_folder, load_imagefolder, load_labels_csv
from siamkit.data.imageset import ImageSet
from siamkit.errors import DataError
from siamkit.registry import DATASETS

# Whether loading shows its progress bars (decoding and caching image folders); ``--quiet`` sets it
# off around a run. A context variable, so registered ``load(cfg)`` functions keep their signature.
_PROGRESS: ContextVar[bool] = ContextVar("siamkit_loading_progress", default=True)


@contextlib.contextmanager
def loading_progress(enabled: bool) -> Iterator[None]:
    """Within the block, datasets load with (``True``) or without progress bars."""
    token = _PROGRESS.set(enabled)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    ``load(cfg)`` returns ``(train, test)`` :class:`ImageSet` splits for a
    :class:`~siamkit.config.DataConfig` (``test`` is ``None`` for unlabeled data);
    ``needs_root``: ``--data-root`` is required; ``recipe``: the augmentation recipe it trains with
    unless ``data.recipe`` says otherwise (a function of ``data.image_size`` when the right recipe
    depends on the resolution).
    """

    name: str
    load: Callable[[DataConfig], tuple[ImageSet, ImageSet]]
    needs_root: bool = True
    recipe: str | Callable[[int | None], str] = "cifar"
    note: str = ""

    def recipe_for(self, image_size: int | None) -> str:
        return self.recipe(image_size) if callable(self.recipe) else self.recipe


def register_dataset(dataset: Dataset, replace: bool = False) -> Dataset:
    """Add ``dataset`` to the registry (``--dataset NAME``)."""
    return DATASETS.register(dataset.name, dataset, replace=replace)


def load_datasets(cfg: DataConfig) -> tuple[ImageSet, ImageSet | None]:
    """The train and held-out splits a :class:`~siamkit.config.DataConfig` names (no held-out
    split for unlabeled data)."""
    return DATASETS.get(cfg.dataset).load(cfg)


def load_eval_splits(path: str | Path, cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Labelled data for evaluation (``--eval-data``): ``DIR/train/<class>`` and ``DIR/val/<class>``
    (or ``test/``), or a labels CSV; decoded at the size ``cfg`` trains at."""
    path = Path(path).expanduser()
    how = _decoding(cfg)
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_labels_csv(path, how, seed=0)
    if not path.is_dir():
        raise DataError(f"--eval-data {path}: not found; give a folder with train/ and val/ class folders, or a .csv")
    kw = {k: getattr(how, k) for k in ("cache", "cache_dir", "max_memory_gb", "verify", "progress")}
    train = load_imagefolder(path, "train", how.size, skip_bad=cfg.skip_bad_images, **kw)
    test = load_imagefolder(path, "val", how.size, skip_bad=cfg.skip_bad_images, **kw)
    check_same_classes(train, test)
    return train, test


def monitor_splits(cfg: DataConfig, train: ImageSet, test: ImageSet | None) -> tuple[ImageSet, ImageSet] | None:
    """The (bank, query) splits the kNN monitor measures on: ``data.eval_data`` when set, else
    the dataset's own labelled splits; ``None`` when there is no labelled data."""
    if cfg.eval_data is not None:
        return load_eval_splits(cfg.eval_data, cfg)
    return (train, test) if test is not None and train.labelled else None


def _decoding(cfg: DataConfig) -> Decoding:
    return Decoding(
        size=cfg.decode_size(),
        cache=cfg.cache,
        cache_dir=cfg.cache_dir,
        max_memory_gb=cfg.max_memory_gb,
        verify=cfg.verify_images,
        progress=_PROGRESS.get(),
    )


def _root(cfg: DataConfig) -> Path:
    return Path(cfg.data_root).expanduser()


def _cifar(name: str):
    def load(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
        root = _root(cfg)
        if not root.is_dir() and not cfg.download:
            raise DataError(f"--data-root {root} does not exist (pass --download to fetch {name} there)")
        return load_cifar(name, root, "train", cfg.download), load_cifar(name, root, "test", cfg.download)

    return load


def _digits(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    size = cfg.decode_size()
    return load_digits("train", size), load_digits("test", size)


def _imagefolder(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    root = _root(cfg)
    if not root.is_dir():
        raise DataError(f"--data-root {root} does not exist; it must hold train/ and val/ (or test/) class folders")
    return load_eval_splits(root, cfg)


def _folder(cfg: DataConfig) -> tuple[ImageSet, None]:
    return load_folder(_root(cfg), _decoding(cfg)), None


def _folder_recipe(image_size: int | None) -> str:
    """Images of 64 px or less train with the CIFAR recipe, larger ones with ImageNet's."""
    return "imagenet" if (image_size if image_size is not None else 32) > 64 else "cifar"


for _d in (
    Dataset("digits", _digits, needs_root=False, recipe="digits", note="scikit-learn's 1,797 digits, embedded"),
    Dataset("cifar10", _cifar("cifar10"), note="the official python-version folder"),
    Dataset("cifar100", _cifar("cifar100"), note="the official python-version folder"),
    Dataset("imagefolder", _imagefolder, recipe=_folder_recipe, note="DIR/train/<class>/*, DIR/val/<class>/*"),
    Dataset(
        "folder", _folder, recipe=_folder_recipe, note="any folder tree of images, unlabeled (--eval-data for kNN)"
    ),
):
    register_dataset(_d)
