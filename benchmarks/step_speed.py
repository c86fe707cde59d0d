"""Training-step throughput of config variants on CIFAR-10 (no evaluation), one process: the median
of 10 steps after 2 warm-up ones, and how long the first step took (with ``train.compile`` that is
mostly compilation). docs/speedrun.md's cost table:

    python benchmarks/step_speed.py data '{}' '{"train.precision": "fp32"}' '{"model.width": 16}' ...

Each argument after the data root is a JSON object of config values over the cpu preset, or over
another preset given first (``--preset speedrun``). ``--rounds N`` measures every variant N times,
interleaved (variant 1, 2, ..., 1, 2, ...), so a drift of the machine's speed reaches all of them."""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from siamkit.config import build_config
from siamkit.train import distributed
from siamkit.train.trainer import Trainer


def speed(values, preset, steps=12):
    cfg = build_config(
        {
            "data.dataset": "cifar10",
            "data.data_root": sys.argv[1],
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


args = sys.argv[2:]
preset = args.pop(args.index("--preset") + 1) if "--preset" in args else "cpu"
rounds = int(args.pop(args.index("--rounds") + 1)) if "--rounds" in args else 1
args = [a for a in args if a not in ("--preset", "--rounds")]
for r in range(rounds):
    for spec in args:
        values = json.loads(spec)
        rate, first = speed(values, preset)
        print(f"round {r + 1}", preset, json.dumps(values), f"{rate:.0f} img/s (first step {first:.1f} s)", flush=True)
