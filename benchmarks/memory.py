"""Peak resident memory of a training run, per method, at the cpu preset.

    python benchmarks/memory.py --data-root DIR [--steps 6] [--methods simsiam ...]

Each method runs ``siamkit pretrain --preset cpu`` for one short epoch (``--steps`` steps of 256
images, kNN monitor on a 1,000-image bank) in a fresh process; its peak RSS is read from the
kernel when it exits (``os.wait4``). The baseline row is a process that imports siamkit and loads
CIFAR-10 (the 50,000 + 10,000 uint8 images every run holds), so "training" = peak - baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from siamkit.methods import METHODS

BASELINE = (
    "from siamkit.config import build_config; from siamkit.data import load_datasets; "
    "import torch, siamkit.train; load_datasets(build_config({{'data.dataset': 'cifar10', "
    "'data.data_root': {root!r}}}, preset='cpu').data)"
)


def peak_rss_mib(argv: list[str]) -> float:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    args = parser.parse_args()
    base = peak_rss_mib([sys.executable, "-c", BASELINE.format(root=args.data_root)])
    print("cpu preset (ResNet-10 w32, batch 256, bf16), one epoch of", args.steps, "steps\n")
    print("| method | views encoded per image | peak RSS (MiB) | training (peak - baseline, MiB) |")
    print("|---|---|---|---|")
    print(f"| baseline: siamkit + CIFAR-10 loaded | - | {base:.0f} | - |")
    for name in args.methods:
        with tempfile.TemporaryDirectory() as tmp:
            argv = [sys.executable, "-m", "siamkit", "pretrain", "--preset", "cpu", "--out", f"{tmp}/run"]
            for kv in (
                f"method.name={name}",
                "data.dataset=cifar10",
                f"data.data_root={args.data_root}",
                f"data.train_subset={256 * args.steps}",
                "train.epochs=1",
                "train.knn_every=0",
                "train.knn_train_subset=1000",
            ):
                argv += ["--set", kv]
            peak = peak_rss_mib(argv)
        print(f"| `{name}` | {METHODS[name].views_drawn} | {peak:.0f} | {peak - base:.0f} |", flush=True)


if __name__ == "__main__":
    main()
