import pickle
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from siamkit.data import DataError, load_cifar, load_datasets, load_digits, load_imagefolder, train_batches
from siamkit.data import cifar as ds
from siamkit.data.loader import eval_batches


def test_digits_split_is_fixed_and_stratified():
    train, test = load_digits("train"), load_digits("test")
    assert (len(train), len(test)) == (1347, 450)
    assert train.images.shape == (1347, 3, 32, 32) and train.images.dtype == torch.uint8
    assert torch.equal(load_digits("train").images, train.images)  # deterministic
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # 25 % of ~180 per class
    assert train.images.max() == 255 and torch.equal(train.images[:, 0], train.images[:, 2])


def _fake_cifar(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": list(rng.integers(0, 10, n)),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return folder


def test_cifar_reads_the_python_layout_and_warns_once_on_checksums(tmp_path, capsys):
    folder = _fake_cifar(tmp_path)
    ds._warned.clear()
    train = load_cifar("cifar10", tmp_path, "train")
    test = load_cifar("cifar10", tmp_path, "test")
    assert len(train) == 100 and len(test) == 20 and train.classes[3] == "c3"
    raw = pickle.loads((folder / "data_batch_1").read_bytes())["data"][0]
    assert torch.equal(train.images[0, 1].flatten(), torch.from_numpy(raw[1024:2048]))  # the G plane
    err = capsys.readouterr().err
    assert err.count("differs from the official cifar10 files") == 1


def test_cifar_missing_and_offline_download_are_clear(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="Pass --download"):
        load_cifar("cifar10", tmp_path, "train")

    def offline(*a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(ds.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="seems to be offline"):
        load_cifar("cifar10", tmp_path, "train", download=True)
    assert not list(tmp_path.glob("*.part"))


def _save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _folder(root, classes=("cat", "dog"), val_classes=None):
    rng = np.random.default_rng(0)
    for split, names in (("train", classes), ("val", val_classes or classes)):
        for c in names:
            for i in range(3):
                arr = rng.integers(0, 256, (20 + 7 * i, 30, 3), dtype=np.uint8)
                _save(root / split / c / f"{i}.png", Image.fromarray(arr))
    return root


def test_imagefolder_converts_every_mode_to_rgb(tmp_path):
    root = _folder(tmp_path)
    d = root / "train" / "cat"
    _save(d / "gray.png", Image.new("L", (16, 16), 77))
    _save(d / "rgba.png", Image.new("RGBA", (16, 16), (10, 20, 30, 128)))
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([200, 100, 50] * 256)
    _save(d / "palette.gif", pal)
    _save(d / "deep.png", Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)))
    _save(d / "half.tif", Image.fromarray(np.full((16, 16), 32896, dtype=np.uint16)))
    _save(d / "photo.jpg", Image.new("RGB", (40, 24), (0, 255, 0)))
    train = load_imagefolder(root, "train", size=12)
    assert train.images.shape == (12, 3, 12, 12) and train.classes == ["cat", "dog"]
    by_name = {p.name: train.images[i] for i, p in enumerate(sorted((root / "train" / "cat").iterdir()))}
    assert (by_name["gray.png"] == 77).all()
    assert by_name["rgba.png"][:, 0, 0].tolist() == [10, 20, 30]
    assert by_name["palette.gif"][:, 0, 0].tolist() == [200, 100, 50]
    assert (by_name["deep.png"] == 255).all()  # 16-bit white stays white, not clipped noise
    assert (by_name["half.tif"] == 128).all()  # 32896 / 257 = 128
    assert by_name["photo.jpg"][1].float().mean() > 240


def test_class_sets_must_match(tmp_path):
    from siamkit.config import build_config

    root = _folder(tmp_path, val_classes=("cat", "cow"))
    cfg = build_config({"data.dataset": "imagefolder", "data.data_root": str(root)})
    with pytest.raises(DataError, match=r"only in train: \['dog'\]; only in validation: \['cow'\]"):
        load_datasets(cfg.data)


def test_large_folders_stream_the_same_pixels(tmp_path):
    root = _folder(tmp_path)
    small = load_imagefolder(root, "train", size=16)
    streamed = load_imagefolder(root, "train", size=16, cache=False, max_memory_gb=1e-9)
    assert streamed.files is not None and streamed.images is None
    batches = list(train_batches(streamed, 2, epoch=0, seed=0, num_workers=1))  # decoded in a worker
    ref = list(train_batches(small, 2, epoch=0, seed=0))
    assert len(batches) == 3 and all(torch.equal(a, b) for a, b in zip(batches, ref, strict=True))
    xs = torch.cat([x for x, _ in eval_batches(streamed, 4)])
    assert torch.equal(xs, small.images)


def test_rank_shares_make_up_the_global_batch():
    data = load_digits("test")
    single = list(train_batches(data, 64, epoch=3, seed=1))
    r0 = list(train_batches(data, 64, epoch=3, seed=1, rank=0, world=2))
    r1 = list(train_batches(data, 64, epoch=3, seed=1, rank=1, world=2))
    assert len(single) == 450 // 64
    for s, a, b in zip(single, r0, r1, strict=True):
        assert torch.equal(s, torch.cat([a, b]))
    later = list(train_batches(data, 64, epoch=3, seed=1, start_step=4))
    assert all(torch.equal(a, b) for a, b in zip(later, single[4:], strict=True))
    assert not torch.equal(single[0], next(iter(train_batches(data, 64, epoch=4, seed=1))))


def test_subset_is_stratified_and_fixed():
    data = load_digits("train")
    sub = data.subset(200, seed=0)
    assert len(sub) == 200 and torch.equal(sub.labels, data.subset(200, seed=0).labels)
    assert torch.bincount(sub.labels).min() >= 19
