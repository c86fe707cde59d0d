"""The image-folder cache on real files (docs/benchmarks.md, "Your own images"): scan time, cache
build img/s, an update after a few files change, and training throughput from the cache against
the in-memory CIFAR-10 path. Run it alone on an idle machine:

    python benchmarks/folder_cache.py data /tmp/bench-folders

``data`` holds cifar-10-batches-py (python ../shared/data/export.py cifar10 data). The script
generates, under the second argument (about 3 GB):
- ``small100k/``: 100,000 JPEGs (quality 90) of CIFAR-10 images upscaled to 48..160 px on each
  side, in 100 nested folders, what a folder of thumbnails or web images looks like;
- ``photos/``: 200 JPEGs of 4000x3000 px (12 MP, a phone photo's size): CIFAR-10 images upscaled
  with sensor-like noise added, so that they have a photo's entropy and decode cost.
The figures are medians of ``--repeats`` (3) where a step can be repeated.
"""

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from siamkit.config import build_config
from siamkit.data import Decoding, cached_folder, load_cifar, load_folder, scan_images, train_batches
from siamkit.data.images import decode_image, resize_center, to_rgb
from siamkit.train import distributed
from siamkit.train.trainer import Trainer


def generate(cifar: np.ndarray, root: Path, n: int, sizes, noise: float, quality: int = 90) -> None:
    """``n`` JPEGs of CIFAR-10 images resized to ``sizes(rng) -> (w, h)``, with Gaussian noise of
    std ``noise`` levels, in 100 x 10 nested folders (skipped when ``root`` already holds them)."""
    if root.is_dir() and sum(1 for _ in root.rglob("*.jpg")) == n:
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(n):
        w, h = sizes(rng)
        img = Image.fromarray(cifar[i % len(cifar)].transpose(1, 2, 0)).resize((w, h), Image.Resampling.BICUBIC)
        if noise:
            arr = np.asarray(img, dtype=np.int16) + rng.normal(0, noise, (h, w, 3)).astype(np.int16)
            img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
        d = root / f"{i % 100:02d}" / f"{i // 1000 % 10}"
        d.mkdir(parents=True, exist_ok=True)
        img.save(d / f"{i:06d}.jpg", quality=quality)
        if i % 5000 == 4999:
            print(f"  generated {i + 1}/{n} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def full_decode(path: Path, size: int) -> np.ndarray:
    """decode_image without the reduced-scale JPEG decoding: the reference for its speed-up."""
    with Image.open(path) as img:
        img.load()
        return np.asarray(resize_center(to_rgb(img), size)).transpose(2, 0, 1)


def folder_stats(root: Path, size: int, cache: Path, repeats: int) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    scans = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        files = scan_images(root)
        scans.append(time.perf_counter() - t0)
    built = cached_folder(root, size, cache)  # cold: every file decoded
    checks = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        again = cached_folder(root, size, cache, progress=False)
        checks.append(time.perf_counter() - t0)
        assert again.stats["decoded"] == 0
    return {
        "files": len(files),
        "scan_s": statistics.median(scans),
        "build_s": built.stats["build_s"],
        "build_img_s": built.stats["img_s"],
        "reuse_check_s": statistics.median(checks),
        "cache_mb": built.images.nbytes / 2**20,
    }


def update_stats(root: Path, size: int, cache: Path, changed: int) -> dict:
    """Touch ``changed`` files (a new mtime), then time the cache update."""
    files = scan_images(root)
    for e in files[:: max(1, len(files) // changed)][:changed]:
        os.utime(root / e.rel)
    cf = cached_folder(root, size, cache, progress=False)
    return {"changed": cf.stats["decoded"], "update_s": cf.stats["build_s"]}


def train_throughput(values: dict, steps: int, repeats: int) -> float:
    """Images per second of training steps including fetching each batch (speedrun preset)."""
    values = {"method.name": "simsiam", "train.knn_every": 0, "train.device": "cpu", **values}
    cfg = build_config(values, preset="speedrun")
    rates = []
    for r in range(repeats):
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"folder-bench-run-{os.getpid()}-{r}"
        shutil.rmtree(out, ignore_errors=True)
        t = Trainer(cfg, out, distributed.setup("cpu"), False, None)
        bs = cfg.train.batch_size
        g_aug, g_step = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
        batches = train_batches(t.train_set, bs, r, 0, 0, 1, 0, "cpu", 0)
        times = []
        t0 = time.perf_counter()
        for k, x in enumerate(itertools.islice(batches, steps)):
            t._step(x, k, 0.06, g_aug, g_step)
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        rates.append(bs / statistics.median(times[2:]))
        shutil.rmtree(out, ignore_errors=True)
    return statistics.median(rates)


def data_throughput(data, steps: int) -> float:
    """Images per second of batch fetching alone (no augmentation, no model)."""
    t0 = time.perf_counter()
    n = sum(len(x) for x in itertools.islice(train_batches(data, 256, 0, 0), steps))
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("work", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cifar = load_cifar("cifar10", Path(args.data), "train").images.numpy()
    small, photos, cache = args.work / "small100k", args.work / "photos", args.work / "cache"
    generate(cifar, small, 100_000, lambda rng: (int(rng.integers(48, 161)), int(rng.integers(48, 161))), 0.0)
    generate(cifar, photos, 200, lambda rng: (4000, 3000), 6.0)
    results: dict = {"machine": environment_line()}
    for name, root, size in (("small100k", small, 32), ("small100k", small, 64), ("photos", photos, 64)):
        r = folder_stats(root, size, cache / f"{name}-{size}", args.repeats)
        print(json.dumps({"folder": name, "size": size, **r}), flush=True)
        results[f"{name}@{size}"] = r
    results["update"] = update_stats(small, 32, cache / "small100k-32", 1000)
    print(json.dumps({"update": results["update"]}), flush=True)
    sample = sorted(photos.rglob("*.jpg"))[:40]
    for label, fn in (("reduced-scale", decode_image), ("full", full_decode)):
        t0 = time.perf_counter()
        for p in sample:
            fn(p, 64)
        results[f"photo_decode_{label}_img_s"] = len(sample) / (time.perf_counter() - t0)
        print(label, f"{results[f'photo_decode_{label}_img_s']:.1f} img/s (one thread)", flush=True)
    os.environ["SIAMKIT_CACHE"] = str(cache)
    mem = load_cifar("cifar10", Path(args.data), "train")
    folder = load_folder(small, Decoding(size=32, cache_dir=str(cache)))
    results["data_img_s"] = {"cifar_in_memory": data_throughput(mem, 100), "folder_cache": data_throughput(folder, 100)}
    print(json.dumps(results["data_img_s"]), flush=True)
    results["train_img_s"] = {
        "cifar_in_memory": train_throughput({"data.dataset": "cifar10", "data.data_root": args.data}, 12, args.repeats),
        "folder_cache_32px": train_throughput(
            {"data.dataset": "folder", "data.data_root": str(small), "data.cache_dir": str(cache)}, 12, args.repeats
        ),
    }
    print(json.dumps(results["train_img_s"]), flush=True)
    out = Path("docs/benchmarks/folder_cache.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def environment_line() -> str:
    from siamkit.train.telemetry import machine_name

    return f"{machine_name()}, torch {torch.__version__}, {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
