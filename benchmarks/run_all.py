"""Run every benchmark, back to back, and write each one's output into docs/benchmarks.md.

    make bench                                   # creates .bench-venv, then runs this in it
    .bench-venv/bin/python benchmarks/run_all.py [--only lightly augmentation ...] [--data-root DIR]

Each benchmark's output replaces the block between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` in the page, headed by the exact command and the date; the text around
the blocks (what the numbers mean, what was profiled and changed) is hand-written and kept. CIFAR-10
is exported from ``../shared/data`` into ``--data-root`` the first time. Run it on an otherwise
idle machine: two processes on two cores slow each other down by far more than 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from siamkit.experiments import export_dataset
from siamkit.results import fill_markers
from siamkit.train.telemetry import machine_name

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


R18 = ["vs_lightly.py", "--backbone", "resnet18_cifar", "--width", "64", "--methods", "simsiam"]
R18 += ["--steps", "3", "--workers", "1"]  # ~50 img/s: fewer steps, lightly's best worker setting only


def benches(data: str) -> dict[str, list[str]]:
    return {
        "lightly": ["vs_lightly.py", "--data-root", data],
        "lightly-resnet18": [*R18, "--data-root", data],
        "augmentation": ["augmentation.py"],
        "objective": ["objective_overhead.py"],
        "evaluation": ["knn_speed.py", "--dim", "256"],  # the cpu preset's feature size
        "flops": ["flops.py"],
        "memory": ["memory.py", "--data-root", data],
    }


ISA = (  # what decides the bf16 matmul peak: AMX tiles > AVX-512 bf16 > AVX2
    ("amx_bf16", "AMX bf16"),
    ("avx512_bf16", "AVX-512 bf16"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
)


def machine() -> str:
    cpu = machine_name("cpu")
    versions = [f"torch {torch.__version__}", f"Python {platform.python_version()}"]
    for name in ("lightly", "torchvision", "sklearn"):
        with contextlib.suppress(ImportError):
            versions.append(f"{name} {__import__(name).__version__}")
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    isa = [name for flag, name in ISA if flag in flags] or ["instruction sets not read"]
    return (
        f"- CPU: {cpu} ({', '.join(isa)}); {torch.get_num_threads()} torch threads on {len(os.sched_getaffinity(0))} "
        f"cores; bf16 matmul through {'oneDNN' if torch.backends.mkldnn.is_available() else 'no oneDNN'}\n"
        f"- {', '.join(versions)}\n"
        f"- {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these blocks")
    parser.add_argument("--data-root", default=str(REPO / "bench-data"))
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--page", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    export_dataset("cifar10", Path(args.data_root), Path(args.shared))
    page = Path(args.page)
    if not page.exists():
        sys.exit(f"{page} not found: --page must name the benchmarks page with its <!-- bench:NAME --> blocks")
    todo = benches(args.data_root)
    names = args.only or ["machine", *todo]
    for name in names:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if name == "machine":
            body = f"Measured {stamp}:\n\n{machine()}"
        else:
            argv = todo[name]
            print(f"== {name}: python benchmarks/{' '.join(argv)}", flush=True)
            out = subprocess.run([sys.executable, *argv], cwd=HERE, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"benchmark {name} failed:\n{out.stderr[-3000:]}")
            chatter = ("epoch ", "siamkit:", "note:")  # pretrain's own progress lines
            tables = "\n".join(line for line in out.stdout.splitlines() if not line.startswith(chatter))
            body = f"`python benchmarks/{' '.join(argv)}` ({stamp}):\n\n{tables.strip()}"
            print(tables, flush=True)
        missing = fill_markers(page, {name: body}, prefix="bench")
        if missing:
            sys.exit(f"{page} has no <!-- bench:{name} --> block")


if __name__ == "__main__":
    main()
