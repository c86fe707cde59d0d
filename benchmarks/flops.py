"""The training step's achieved FLOP/s against the machine's dense matmul peak, fp32 and bf16.

    python benchmarks/flops.py [--backbone resnet18_cifar] [--width 64] [--batch 128] [--repeats 5]

FLOPs of one SimSiam step (forward and backward of both views, loss) are counted with
``torch.utils.flop_counter.FlopCounterMode``; the step is timed (median after a warm-up); the peak
is the faster of two dense kernels timed interleaved with the step: a square ``torch.mm`` and a 1x1
convolution (a GEMM through oneDNN). Both are needed: fp32 ``torch.mm`` goes through MKL, which runs
far below the hardware on AMD CPUs, so a matmul alone can understate the machine's peak. Then the
bf16 step is profiled (``torch.profiler``, two steps) and its time split by kind of operator: where
the time goes that the matmul peak does not bound.
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved
from torch.utils.flop_counter import FlopCounterMode

from siamkit.methods import resolve_method
from siamkit.models import ModelConfig, SiameseNet
from siamkit.train import step
from siamkit.train.memory import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18_cifar")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--matmul", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keep_freed_memory()  # the allocator setting siamkit's training runs with
    spec = resolve_method("simsiam")
    print(
        f"{args.backbone} width {args.width}, batch {args.batch}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}\n"
    )
    head = "| precision | step FLOPs (G) | step (ms) | achieved GFLOP/s | torch.mm GFLOP/s | 1x1 conv GFLOP/s |"
    print(head + " share of the faster |")
    print("|---|---|---|---|---|---|---|")
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        net = SiameseNet(ModelConfig(backbone=args.backbone, width=args.width)).to(memory_format=torch.channels_last)
        views = torch.randn(2, args.batch, 32, 32, 3).permute(0, 1, 4, 2, 3)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def train_step(net=net, views=views, opt=opt, dtype=dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                loss, _ = step(net, spec, views)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        with FlopCounterMode(display=False) as counter:
            train_step()
        flops = counter.get_total_flops()
        a, b = torch.randn(args.matmul, args.matmul, dtype=dtype), torch.randn(args.matmul, args.matmul, dtype=dtype)
        x = torch.randn(256, 512, 16, 16, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(512, 512, 1, 1, dtype=dtype).contiguous(memory_format=torch.channels_last)

        def matmul(a=a, b=b):
            torch.mm(a, b)

        def conv1x1(x=x, w=w):
            torch.nn.functional.conv2d(x, w)

        sec = interleaved({"step": train_step, "matmul": matmul, "conv1x1": conv1x1}, args.repeats)
        seconds = sec["step"]
        mm = 2 * args.matmul**3 / sec["matmul"]
        conv = 2 * x.shape[0] * x.shape[2] * x.shape[3] * w.shape[0] * w.shape[1] / sec["conv1x1"]
        peak = max(mm, conv)
        achieved = flops / seconds
        print(
            f"| {precision} | {flops / 1e9:.1f} | {seconds * 1000:.0f} | {achieved / 1e9:.0f} | {mm / 1e9:.0f} | "
            f"{conv / 1e9:.0f} | {100 * achieved / peak:.0f} % |"
        )
        if precision == "bf16":
            split = time_split(train_step)
    print("\nbf16 step, self CPU time by kind of operator (torch.profiler, two steps):\n")
    print("| operators | share of the step |")
    print("|---|---|")
    for kind, share in split:
        print(f"| {kind} | {100 * share:.0f} % |")


KINDS = (  # operator name fragments -> kind, first match wins
    ("convolution", "convolutions (forward + backward)"),
    ("conv", "convolutions (forward + backward)"),
    ("batch_norm", "batch norm (forward + backward)"),
    ("native_batch_norm", "batch norm (forward + backward)"),
    ("mm", "matmuls (heads)"),
    ("addmm", "matmuls (heads)"),
    ("sgd", "optimizer"),
    ("_foreach", "optimizer"),
    ("relu", "ReLU / threshold"),
    ("threshold", "ReLU / threshold"),
    ("add", "elementwise add / mul / copy"),
    ("mul", "elementwise add / mul / copy"),
    ("copy", "elementwise add / mul / copy"),
    ("to_copy", "elementwise add / mul / copy"),
)


def time_split(train_step) -> list[tuple[str, float]]:
    """Self CPU time of two profiled steps, grouped into kinds of operator; shares of the total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step()
        train_step()
    split: dict[str, float] = {}
    for e in prof.key_averages():
        name = e.key.lower()
        kind = next((k for frag, k in KINDS if frag in name), "other")
        split[kind] = split.get(kind, 0.0) + e.self_cpu_time_total
    total = sum(split.values())
    return sorted(((k, v / total) for k, v in split.items()), key=lambda kv: -kv[1])


if __name__ == "__main__":
    main()
