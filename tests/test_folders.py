"""Your own images: unlabeled folders, the decoded-image cache, labelled evaluation data beside
them, and the image-file cases a real folder holds (formats, EXIF, broken files, bombs)."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from siamkit.data import DataError, Decoding, cached_folder, load_folder, scan_images
from siamkit.data.folders import load_labels_csv
from siamkit.data.images import decode_image


def _noise(rng, h, w):
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _photos(root, n=12, seed=0):
    """``n`` real encoded images of mixed sizes and formats, flat and nested."""
    rng = np.random.default_rng(seed)
    formats = [("jpg", "JPEG"), ("PNG", "PNG"), ("webp", "WEBP"), ("bmp", "BMP"), ("TIFF", "TIFF"), ("jpeg", "JPEG")]
    for i in range(n):
        ext, fmt = formats[i % len(formats)]
        path = root / ("deep/er" if i % 3 == 0 else "") / f"img{i:03d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        _noise(rng, int(rng.integers(10, 90)), int(rng.integers(10, 90))).save(path, fmt)
    return root


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width x height`` (a decompression bomb's header), with no pixels."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_scan_finds_images_at_any_depth_in_any_case_and_skips_hidden(tmp_path):
    _photos(tmp_path, n=6)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".thumbs").mkdir()
    _noise(np.random.default_rng(1), 8, 8).save(tmp_path / ".thumbs" / "t.png")
    _noise(np.random.default_rng(1), 8, 8).save(tmp_path / ".hidden.png")
    rels = [e.rel for e in scan_images(tmp_path)]
    assert rels == sorted(rels) and len(rels) == 6
    assert "deep/er/img000.jpg" in rels and "img001.PNG" in rels and "img004.TIFF" in rels


def test_cache_holds_exactly_what_decoding_each_file_gives(tmp_path):
    root = _photos(tmp_path / "photos")
    cf = cached_folder(root, 16, tmp_path / "cache", progress=False)
    assert cf.images.shape == (12, 3, 16, 16) and cf.bad == []
    for i, rel in enumerate(cf.files):  # loop reference: one file at a time
        assert np.array_equal(cf.images[i], decode_image(root / rel, 16)), rel
    again = cached_folder(root, 16, tmp_path / "cache", progress=False)
    assert again.stats["decoded"] == 0 and again.stats["reused"] == 12
    assert np.array_equal(np.asarray(again.images), np.asarray(cf.images))


def test_cache_follows_added_removed_and_changed_files(tmp_path):
    root = _photos(tmp_path / "photos")
    cache = tmp_path / "cache"
    first = cached_folder(root, 8, cache, progress=False)
    (root / first.files[0]).unlink()  # removed
    _noise(np.random.default_rng(7), 30, 40).save(root / "new.png")  # added
    changed = root / first.files[5]
    _noise(np.random.default_rng(8), 50, 20).save(changed, "WEBP" if changed.suffix == ".webp" else None)  # changed
    second = cached_folder(root, 8, cache, progress=False)
    assert second.stats["decoded"] == 2 and second.stats["reused"] == 10  # 12 - 1 removed - 1 changed
    assert first.files[0] not in second.files and "new.png" in second.files
    for i, rel in enumerate(second.files):
        assert np.array_equal(second.images[i], decode_image(root / rel, 8)), rel
    assert len(list(second.path.glob("images-*.u8"))) == 1  # the replaced array is gone


def test_a_killed_build_leaves_the_cache_valid(tmp_path):
    root = _photos(tmp_path / "photos", n=4)
    cf = cached_folder(root, 8, tmp_path / "cache", progress=False)
    (cf.path / "images-1.u8").write_bytes(b"half")  # what a build killed mid-way leaves
    again = cached_folder(root, 8, tmp_path / "cache", progress=False)
    assert again.stats["decoded"] == 0 and np.array_equal(np.asarray(again.images), np.asarray(cf.images))
    expected = np.array(cf.images)  # a copy: the mapped file is about to be cut
    folder = cf.path
    del cf, again
    array = folder / json.loads((folder / "index.json").read_text())["array"]  # cut short: a full disk, a bad copy
    array.write_bytes(array.read_bytes()[:100])
    rebuilt = cached_folder(root, 8, tmp_path / "cache", progress=False)
    assert rebuilt.stats["decoded"] == 4 and np.array_equal(np.asarray(rebuilt.images), expected)


def test_an_unwritable_cache_is_a_clear_error(tmp_path):
    root = _photos(tmp_path / "photos", n=2)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    with pytest.raises(DataError, match=r"cannot create the image cache .*; set data.cache_dir"):
        cached_folder(root, 8, blocker, progress=False)


def test_unreadable_files_are_skipped_with_reasons(tmp_path, capsys):
    root = _photos(tmp_path / "photos", n=10)
    (root / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    _noise(np.random.default_rng(3), 40, 40).save(buf, "JPEG")
    (root / "truncated.jpg").write_bytes(buf.getvalue()[:200])
    (root / "text.png").write_text("not an image")
    _png_header_only(root / "bomb.png", 40_000, 40_000)  # Pillow itself refuses it when opening
    _png_header_only(root / "big.png", 10_000, 10_000)  # Pillow only warns; refused before decoding
    s = load_folder(root, Decoding(size=8, progress=False))
    assert len(s) == 10 and not s.labelled and (s.labels == -1).all()
    reasons = {p.rsplit("/", 1)[-1]: why for p, why in s.skipped}
    assert set(reasons) == {"zero.jpg", "truncated.jpg", "text.png", "bomb.png", "big.png"}
    assert "decompression bomb" in reasons["bomb.png"]
    assert "decompression bomb: 10000x10000 = 100,000,000 pixels" in reasons["big.png"]
    assert "skipping 5 unreadable image file(s) of 15" in capsys.readouterr().err


def test_a_folder_mostly_unreadable_or_empty_is_refused(tmp_path):
    root = _photos(tmp_path / "photos", n=2)
    for i in range(3):
        (root / f"bad{i}.jpg").write_text("no")
    with pytest.raises(DataError, match=r"3 of the 5 image files under .* cannot be read.*right folder"):
        load_folder(root, Decoding(size=8, progress=False))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="holds no image files"):
        load_folder(tmp_path / "empty", Decoding(size=8, progress=False))
    with pytest.raises(DataError, match="is not a folder"):
        load_folder(tmp_path / "missing", Decoding(size=8, progress=False))


def test_exif_orientation_is_applied(tmp_path):
    # a 40x20 image, left half red, stored with EXIF orientation 6 (display rotated 90 degrees clockwise)
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.png", exif=exif)
    out = decode_image(tmp_path / "rotated.png", 20)  # displayed as 20 wide, 40 tall: red on top
    assert out[0, :5].mean() > 200 and out[0, -5:].mean() < 50


def test_big_jpegs_decode_at_a_reduced_scale_close_to_full_decoding(tmp_path):
    y, x = np.mgrid[0:1200, 0:1600]
    smooth = np.stack([x * 255 // 1600, y * 255 // 1200, (x + y) * 255 // 2800], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=95)
    fast = decode_image(tmp_path / "big.jpg", 32).astype(float)
    with Image.open(tmp_path / "big.jpg") as im:  # the reference: full decode, then the same resize
        from siamkit.data.images import resize_center

        full = np.asarray(resize_center(im.convert("RGB"), 32)).transpose(2, 0, 1).astype(float)
    assert np.abs(fast - full).mean() < 3.0  # a 1/8-scale DCT decode of a smooth image differs by a few levels


def test_labels_csv_with_and_without_a_split_column(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        _noise(rng, 12, 12).save(tmp_path / f"{i}.png")
        rows.append((f"{i}.png", "cat" if i % 2 else "dog", "val" if i >= 8 else "train"))
    (tmp_path / "split.csv").write_text("path,label,split\n" + "".join(f"{p},{c},{s}\n" for p, c, s in rows))
    train, val = load_labels_csv(tmp_path / "split.csv", Decoding(size=8, progress=False))
    assert (len(train), len(val)) == (8, 2) and train.classes == ["cat", "dog"]
    assert torch.equal(val.images[0], torch.from_numpy(decode_image(tmp_path / "8.png", 8)))
    (tmp_path / "plain.csv").write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c, _ in rows))
    train, val = load_labels_csv(tmp_path / "plain.csv", Decoding(size=8, progress=False))
    assert (len(train), len(val)) == (8, 2) and sorted(val.labels.tolist()) == [0, 1]  # stratified 20 %
    (tmp_path / "bad.csv").write_text("file,class\n0.png,cat\n")
    with pytest.raises(DataError, match="needs a header with path and label"):
        load_labels_csv(tmp_path / "bad.csv", Decoding(size=8))
    (tmp_path / "blank.csv").write_text("path,label\n0.png,\n")
    with pytest.raises(DataError, match=r"blank.csv, line 2: path and label must be set"):
        load_labels_csv(tmp_path / "blank.csv", Decoding(size=8))
