"""How much of a training step the objective itself costs.

    python benchmarks/objective_overhead.py [--preset cpu] [--repeats 7]

For each objective (SimSiam, GSG guided/random/reverse, SimSiam K-aug, EnSiam) the loss is timed on
projections and predictions of the preset's shape, forward and backward (the gradient flows to
``p`` only), and compared with one whole training step of SimSiam on the same batch (augmented
views in, optimizer step done). Medians of ``--repeats`` after a warm-up.
"""

from __future__ import annotations

import argparse

import torch
from _timing import median_time

from siamkit import losses
from siamkit.config import build_config
from siamkit.methods import resolve_method
from siamkit.models import SiameseNet
from siamkit.train import step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cfg = build_config({"data.dataset": "digits"}, preset=args.preset)
    b, d = cfg.train.batch_size, cfg.model.proj_dim
    bf16 = cfg.train.precision == "bf16"

    net = SiameseNet(cfg.model).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    spec = resolve_method("simsiam")
    views = torch.randn(2, b, 32, 32, 3).permute(0, 1, 4, 2, 3)  # each view channels-last, as the pipeline gives

    def train_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = step(net, spec, views, None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step_s = median_time(train_step, args.repeats)
    g = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if bf16 else torch.float32

    def timed_loss(fn, v):
        p = torch.randn(v, b, d, dtype=dtype, requires_grad=True)
        z = torch.randn(v, b, d, dtype=dtype)

        def run():
            fn(p, z).backward()

        return median_time(run, args.repeats)

    def gsg(mode):
        return lambda p, z: losses.gsg(p[:2], z[:2], p[2:], z[2:], mode=mode, generator=g)

    rows = [
        ("SimSiam (2 views)", timed_loss(losses.simsiam, 2)),
        ("GSG guided (2 + 2 views)", timed_loss(gsg("guided"), 4)),
        ("GSG random", timed_loss(gsg("random"), 4)),
        ("GSG reverse", timed_loss(gsg("reverse"), 4)),
        ("SimSiam K-aug (K = 4)", timed_loss(losses.simsiam, 4)),
        ("EnSiam (K = 4)", timed_loss(losses.ensemble, 4)),
    ]
    print(
        f"preset {args.preset}: batch {b}, D = {d}, {cfg.train.precision}; "
        f"SimSiam training step {step_s * 1000:.0f} ms (median of {args.repeats})\n"
    )
    print("| objective | loss forward + backward (ms) | share of a SimSiam step |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t * 1000:.2f} | {100 * t / step_s:.2f} % |")


if __name__ == "__main__":
    main()
