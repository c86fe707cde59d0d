"""End to end, as README's "Train on your own images" does it: a folder of a few hundred real
encoded images (mixed sizes and formats, a few broken files) -> pretrain with labelled evaluation
data beside it -> embed -> neighbours; config files and ``--resume auto``."""

import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from siamkit.cli import main
from siamkit.errors import ConfigError

SMALL = [
    "--backbone",
    "resnet10_cifar",
    "--image-size",
    "16",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--quiet",
    "--set",
    "model.width=4",
    "--set",
    "model.proj_dim=32",
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.pred_hidden=8",
    "--set",
    "train.knn_k=5",
]


def _shape_image(rng, label, h, w):
    """Class 0: a bright disc; class 1: dark stripes (so kNN on them means something)."""
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 60, (h, w, 3))
    disc = (y - h / 2) ** 2 + (x - w / 2) ** 2 < (min(h, w) / 3) ** 2
    mask = disc if label == 0 else (x // max(1, w // 6)) % 2 == 0
    base[mask] += 180
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    kinds = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("JPEG", "JPEG"), ("bmp", "BMP")]
    for i in range(300):
        ext, fmt = kinds[i % len(kinds)]
        sub = root / "photos" / ("2024/trip" if i % 4 == 0 else "misc")
        sub.mkdir(parents=True, exist_ok=True)
        _shape_image(rng, i % 2, int(rng.integers(24, 120)), int(rng.integers(24, 120))).save(sub / f"p{i}.{ext}", fmt)
    (root / "photos" / "empty.jpg").write_bytes(b"")
    (root / "photos" / "misc" / "cut.png").write_bytes((root / "photos" / "misc" / "p1.png").read_bytes()[:100])
    (root / "photos" / "readme.txt").write_text("not an image, not an image extension either")
    for split, n in (("train", 60), ("val", 30)):
        for i in range(n):
            d = root / "labelled" / split / ("disc" if i % 2 == 0 else "stripes")
            d.mkdir(parents=True, exist_ok=True)
            _shape_image(rng, i % 2, 32, 32).save(d / f"{i}.png")
    return root


def test_pretrain_embed_neighbors(photos, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["pretrain", "--dataset", "folder", "--data-root", str(photos / "photos"), "--out", str(run)]
    assert main([*argv, "--eval-data", str(photos / "labelled"), "--epochs", "1", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "300 training images; 2 unreadable file(s) skipped" in err
    skipped = (run / "skipped_images.tsv").read_text().splitlines()
    assert skipped[0] == "path\treason" and len(skipped) == 3
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [0, 1] and all("knn_top1" in m for m in metrics)
    info = json.loads((run / "run.json").read_text())
    assert (info["train_images"], info["knn_bank_images"], info["test_images"]) == (300, 60, 30)

    assert main(["eval", "knn", "--checkpoint", str(run), "--eval-data", str(photos / "labelled"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_images"] == 60 and result["test_images"] == 30

    emb = tmp_path / "emb" / "photos"
    assert (
        main(["embed", "--checkpoint", str(run), "--images", str(photos / "photos"), "--out", str(emb), "--quiet"]) == 0
    )
    out = capsys.readouterr()
    assert "embedded 300 images (32-d backbone)" in out.out and "skipped 2 unreadable" in out.err
    vectors = np.load(emb.with_suffix(".npy"))
    with open(emb.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert vectors.shape == (300, 32) and len(rows) == 300 and rows[0]["row"] == "0"
    assert len(emb.with_suffix(".skipped.tsv").read_text().splitlines()) == 3

    sheet = tmp_path / "sheet.png"
    assert main(["neighbors", "--embeddings", str(emb), "--query", "0", "-k", "3", "--sheet", str(sheet)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"query: {rows[0]['path']}" and len(printed) == 2 + 3 + 1
    with Image.open(sheet) as im:
        assert im.width == 4 * im.height - 4 * 28  # query + 3 tiles, each (thumb + 8) wide, thumb + 36 tall
    # a new image, not in the file, is embedded with the same checkpoint: a copy of row 5 finds row 5
    copy = tmp_path / "copy.png"
    Image.open(rows[5]["path"]).save(copy)
    assert main(["neighbors", "--embeddings", str(emb), "--query", str(copy), "-k", "1"]) == 0
    best = capsys.readouterr().out.splitlines()[2].split()
    assert best[2] == "5" and float(best[1]) > 0.999
    assert main(["neighbors", "--embeddings", str(emb), "--query", "300"]) == 2
    assert "rows 0..299" in capsys.readouterr().err


def test_a_runs_config_yaml_reproduces_it_and_resume_auto(photos, tmp_path, capsys):
    base = ["--dataset", "folder", "--data-root", str(photos / "photos"), "--epochs", "1", *SMALL]
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["pretrain", *base, "--set", "train.knn_every=0", "--out", str(first)]) == 0
    assert main(["pretrain", "--config", str(first / "config.yaml"), "--out", str(again), "--quiet"]) == 0
    a, b = ((d / "metrics.jsonl").read_text().splitlines() for d in (first, again))
    assert [json.loads(x)["loss"] for x in a] == [json.loads(x)["loss"] for x in b]
    # --resume auto: fresh when there is no checkpoint, resumed when there is
    job = ["pretrain", "--config", str(first / "config.yaml"), "--out", str(tmp_path / "job"), "--resume", "auto"]
    assert main([*job, "--quiet"]) == 0
    assert "--resume auto: starting" in capsys.readouterr().err
    assert main([*job, "--quiet", "--epochs", "2"]) == 0
    assert "--resume auto: resuming" in capsys.readouterr().err
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "job" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert main([*job, "--quiet", "--set", "optim.lr=0.1"]) == 2  # the rerun job asks for another run
    assert "cannot change optim.lr" in capsys.readouterr().err


def test_config_file_errors_name_the_file_and_the_closest_key(tmp_path, capsys):
    cases = {
        "typo.yaml": ({"train": {"epoch": 3}}, "unknown config key 'train.epoch' (did you mean 'train.epochs'?)"),
        "section.yaml": ({"trian": {"epochs": 3}}, "unknown config section(s) trian; valid: method"),
        "value.yaml": ({"train": {"epochs": 0}}, "train.epochs must be > 0, got 0"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
        assert main(["pretrain", "--config", str(tmp_path / name), "--dataset", "digits"]) == 2
        assert message in capsys.readouterr().err, name
    (tmp_path / "broken.yaml").write_text("train: [epochs: 3\n")
    assert main(["pretrain", "--config", str(tmp_path / "broken.yaml")]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    # flags override the file, the file overrides the preset
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"train": {"epochs": 7, "batch_size": 32}}))
    from siamkit.cli.commands import config_from_args
    from siamkit.cli.parser import build_parser

    args = build_parser().parse_args(
        ["pretrain", "--preset", "digits", "--config", str(tmp_path / "ok.yaml"), "--epochs", "0"]
    )
    with pytest.raises(ConfigError, match=r"train\.epochs must be > 0, got 0"):
        config_from_args(args)  # the typed 0 is used (and refused), not replaced by the file's 7
    args = build_parser().parse_args(
        ["pretrain", "--preset", "digits", "--config", str(tmp_path / "ok.yaml"), "--epochs", "2"]
    )
    cfg = config_from_args(args)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.dataset, cfg.preset) == (2, 32, "digits", "digits")


def test_embeddings_round_trip_and_parquet(tmp_path):
    from siamkit.evaluate.embed import Embeddings

    rng = np.random.default_rng(0)
    emb = Embeddings(
        rng.normal(size=(5, 3)).astype(np.float32), [f"img{i}.png" for i in range(5)], {"output": "backbone"}
    )
    emb.vectors[3] = -emb.vectors[0] * 2  # by hand: row 3 is row 0's opposite, cosine -1
    emb.vectors[4] = emb.vectors[0] * 0.5  # row 4 points the same way as row 0, cosine +1
    written = emb.save(tmp_path / "e.npy")  # a suffix given is dropped: e.npy, e.csv, e.json, e.parquet
    back = Embeddings.load(tmp_path / "e")
    assert np.array_equal(back.vectors, emb.vectors) and back.paths == emb.paths and back.about["dim"] == 3
    found = back.neighbors(0, k=4)
    assert found[0][0] == 4 and found[0][1] == pytest.approx(1.0) and found[-1] == (3, pytest.approx(-1.0))
    assert 0 not in [r for r, _ in found]  # a row is not its own neighbour
    loop = sorted(  # loop reference: cosine of every other row
        ((i, float(emb.vectors[i] @ emb.vectors[0] / np.linalg.norm(emb.vectors[i]) / np.linalg.norm(emb.vectors[0])))
         for i in range(1, 5)),
        key=lambda t: -t[1],
    )  # fmt: skip
    assert [r for r, _ in found] == [r for r, _ in loop]
    pq = pytest.importorskip("pyarrow.parquet")
    assert tmp_path / "e.parquet" in written
    table = pq.read_table(tmp_path / "e.parquet").to_pydict()
    assert table["path"] == emb.paths and np.allclose(np.array(table["embedding"]), emb.vectors)


def test_quiet_silences_the_loading_bars_too(photos, tmp_path, capsys, monkeypatch):
    """``--quiet`` once left the bar of a first-time folder cache on stderr; a cold cache each
    time, so the bar has work to show, and without ``--quiet`` it does show."""
    argv = ["pretrain", "--dataset", "folder", "--data-root", str(photos / "photos"), "--epochs", "1"]
    for quiet in (True, False):
        monkeypatch.setenv("SIAMKIT_CACHE", str(tmp_path / f"cache-{quiet}"))
        flags = [a for a in SMALL if a != "--quiet" or quiet]
        assert main([*argv, "--out", str(tmp_path / f"run-{quiet}"), "--set", "train.knn_every=0", *flags]) == 0
        assert ("caching photos at 16 px" in capsys.readouterr().err) is not quiet
