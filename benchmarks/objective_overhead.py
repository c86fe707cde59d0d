"""How much of a training step the objective itself costs.

    python benchmarks/objective_overhead.py [--preset cpu] [--repeats 7]

For each objective (SimSiam, GSG guided/random/reverse, SimSiam K-aug, EnSiam) the loss is timed on
projections and predictions of the preset's shape, forward and backward (the gradient flows to
``p`` only), and compared with a whole training step that encodes the same number of views
(augmented views in, optimizer step done): 2 views for SimSiam, 4 for GSG in the paper's form and
the K = 4 methods. Target: under 2 % of the step. All timed interleaved, round after round;
medians of ``--repeats`` rounds after a warm-up round.
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved

from siamkit import losses
from siamkit.config import build_config
from siamkit.methods import resolve_method
from siamkit.models import SiameseNet
from siamkit.train import step
from siamkit.train.memory import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    keep_freed_memory()  # the allocator setting siamkit's training runs with
    cfg = build_config({"data.dataset": "digits"}, preset=args.preset)
    b, d = cfg.train.batch_size, cfg.model.proj_dim
    bf16 = cfg.train.precision == "bf16"

    net = SiameseNet(cfg.model).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def train_step(method: str, v: int):
        spec = resolve_method(method)
        views = torch.randn(v, b, 32, 32, 3).permute(0, 1, 4, 2, 3)  # each view channels-last, as the pipeline gives

        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, _ = step(net, spec, views, None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run

    g = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if bf16 else torch.float32

    def loss_call(fn, v):
        p = torch.randn(v, b, d, dtype=dtype, requires_grad=True)
        z = torch.randn(v, b, d, dtype=dtype)

        def run():
            fn(p, z).backward()

        return run

    def gsg(mode):
        return lambda p, z: losses.gsg(p[:2], z[:2], p[2:], z[2:], mode=mode, generator=g)

    objectives = [
        ("SimSiam", 2, loss_call(losses.simsiam, 2)),
        ("GSG guided (2 + 2 views)", 4, loss_call(gsg("guided"), 4)),
        ("GSG random", 4, loss_call(gsg("random"), 4)),
        ("GSG reverse", 4, loss_call(gsg("reverse"), 4)),
        ("SimSiam K-aug (K = 4)", 4, loss_call(losses.simsiam, 4)),
        ("EnSiam (K = 4)", 4, loss_call(losses.ensemble, 4)),
    ]
    seconds = interleaved(
        {"step 2": train_step("simsiam", 2), "step 4": train_step("simsiam-kaug", 4)}
        | {name: fn for name, _, fn in objectives},
        args.repeats,
    )
    step_s = {2: seconds["step 2"], 4: seconds["step 4"]}
    rows = [(name, v, seconds[name]) for name, v, _ in objectives]
    print(
        f"preset {args.preset}: batch {b}, D = {d}, {cfg.train.precision}; training step "
        f"{step_s[2] * 1000:.0f} ms with 2 views, {step_s[4] * 1000:.0f} ms with 4 (medians of {args.repeats})\n"
    )
    print("| objective | views encoded | loss forward + backward (ms) | share of the step | under 2 % |")
    print("|---|---|---|---|---|")
    for name, v, t in rows:
        share = 100 * t / step_s[v]
        print(f"| {name} | {v} | {t * 1000:.2f} | {share:.2f} % | {'yes' if share < 2 else 'no'} |")


if __name__ == "__main__":
    main()
