"""Training-step throughput of config variants on CIFAR-10 (no evaluation), one process: the median
of 10 steps after 2 warm-up ones, and how long the first step took (with ``train.compile`` that is
mostly compilation). docs/speedrun.md's cost table:

    python benchmarks/step_speed.py data '{}' '{"train.precision": "fp32"}' '{"model.width": 16}' ...

Each argument after the data root is a JSON object of config values over the cpu preset, or over
another preset given first (``--preset speedrun``). ``--rounds N`` measures every variant N times,
interleaved (variant 1, 2, ..., 1, 2, ...), so a drift of the machine's speed reaches all of them."""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from siamkit.config import build_config
from siamkit.train import distributed
from siamkit.train.trainer import Trainer


def speed(data_root, values, preset, steps=12):
    cfg = build_config(
        {
            "data.dataset": "cifar10",
            "data.data_root": data_root,
            "method.name": "simsiam",
            "train.knn_every": 0,
            "train.device": "cpu",
            "data.train_subset": 256 * 20,
            **values,
        },
        preset=preset,
    )
    out = Path(tempfile.mkdtemp()) / "r"
    info = distributed.setup("cpu")
    t = Trainer(cfg, out, info, False, None)
    import itertools

    from siamkit.data import train_batches

    bs = t.cfg.train.batch_size
    batches = train_batches(t.train_set, bs, 0, 0, 0, 1, 0, info.device, 0)
    g_aug, g_step = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    times = []
    for k, x in enumerate(itertools.islice(batches, steps)):
        t0 = time.perf_counter()
        t._step(x, k, 0.05, g_aug, g_step)
        times.append(time.perf_counter() - t0)
    med = sorted(times[2:])[len(times[2:]) // 2]
    shutil.rmtree(out.parent)
    return bs / med, times[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_root")
    ap.add_argument("variants", nargs="*", type=json.loads, help="JSON objects of config values")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_intermixed_args()
    for r in range(args.rounds):
        for values in args.variants:
            rate, first = speed(args.data_root, values, args.preset)
            line = f"round {r + 1} {args.preset} {json.dumps(values)} {rate:.0f} img/s (first step {first:.1f} s)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
