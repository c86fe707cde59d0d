"""The speedrun preset for every method (issue 19): ``siamkit pretrain --preset speedrun --method M``
at one time budget, then the full kNN (k = 200, weighted, T = 0.1, the 50k bank) and the linear
probe, one run at a time; then the table.

    python benchmarks/speedrun_methods.py --data-root data --budget 60m [--out runs/speedrun-methods]
        [--runs simsiam:0,simsiam:1,...] [--table-only]

The default runs are the issue's: SimSiam, BYOL, their GSG forms, EnSiam and SimSiam K-aug, seed 0,
and a second seed (1) of SimSiam and SimSiam-GSG. On a machine faster than the reference (a 2-vCPU
Zen 4 whose ``cpu`` preset step runs ~310 img/s) give the reference's 60 minutes in its seconds
(``benchmarks/step_speed.py`` measures the ratio; 2022 s on the Zen 5 of docs/speedrun.md).

Each run is ``OUT/METHOD-sSEED``, trained with ``--resume auto``: rerunning the script after a kill
continues the run from its last checkpoint, and skips runs whose evaluations are already recorded.
Run it alone on the machine: the budget is wall-clock, so anything running beside it costs
updates. The table (markdown) is printed and written to ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from siamkit.cli.parser import duration
from siamkit.registry import METHODS
from siamkit.runs import RunFolder

DEFAULT_RUNS = (
    "simsiam:0",
    "simsiam:1",
    "simsiam-gsg:0",
    "simsiam-gsg:1",
    "byol:0",
    "byol-gsg:0",
    "ensiam:0",
    "simsiam-kaug:0",
)
KNN = {"k": 200, "weighted": True, "temperature": 0.1, "train_images": 50_000}


def parse_runs(text: str) -> list[tuple[str, int]]:
    runs = []
    for item in text.split(","):
        method, _, seed = item.strip().partition(":")
        if not method or not seed.isdigit():
            sys.exit(f"--runs: {item!r} is not METHOD:SEED (e.g. simsiam:0)")
        runs.append((method, int(seed)))
    return runs


def final_evals(run: Path) -> tuple[dict | None, dict | None]:
    """The run's full-bank kNN and linear probe records, each ``None`` until measured."""
    if not (run / "evals.jsonl").exists():
        return None, None
    evals = RunFolder(run).read_evals()
    knn = [e for e in evals if e["eval"] == "knn" and all(e.get(k) == v for k, v in KNN.items())]
    linear = [e for e in evals if e["eval"] == "linear" and e.get("label_fraction") is None]
    return (knn[-1] if knn else None), (linear[-1] if linear else None)


def last_trained(run: Path) -> dict | None:
    """The run's last record of a trained epoch (``trained_seconds``, ``step``), ``None`` before the first."""
    if not (run / "metrics.jsonl").exists():
        return None
    return next((r for r in reversed(RunFolder(run).read_metrics()) if "trained_seconds" in r), None)


def siamkit(*args: str) -> None:
    cmd = [sys.executable, "-m", "siamkit", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[1:])}; rerun this script to continue from the last checkpoint")


def train_and_evaluate(method: str, seed: int, run: Path, args) -> None:
    knn, linear = final_evals(run)
    if knn is not None and linear is not None:
        print(f"{run.name}: evaluated already, skipped", flush=True)
        return
    data = ["--dataset", "cifar10", "--data-root", args.data_root]
    last = last_trained(run)
    if last is None or last["trained_seconds"] < args.budget:  # not started, or killed before the end
        siamkit(
            "pretrain", "--preset", "speedrun", "--method", method, "--seed", str(seed), *data,
            "--time-budget", f"{args.budget}s", "--out", str(run), "--resume", "auto",
        )  # fmt: skip
    if knn is None:
        siamkit("eval", "knn", "--checkpoint", str(run), *data, "--k", "200", "--weighted", "--temperature", "0.1")
    if linear is None:
        siamkit("eval", "linear", "--checkpoint", str(run), *data)


def table(runs: list[tuple[str, int]], out: Path) -> str:
    lines = [
        "| method | seed | views per image | kNN % | linear % | updates | img/s | trained s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, seed in runs:
        run = out / f"{method}-s{seed}"
        knn, linear = final_evals(run)
        last = last_trained(run)
        views = METHODS.get(method).views_drawn  # what the preset draws for the method
        if last is None or knn is None or linear is None:
            lines.append(f"| {method} | {seed} | {views} | not measured | | | | |")
            continue
        batch = RunFolder(run).read_config()["train"]["batch_size"]
        rate = last["step"] * batch / last["trained_seconds"]  # images (not views) a second
        lines.append(
            f"| {method} | {seed} | {views} | {knn['top1']:.2f} | {linear['top1']:.2f} | {last['step']:,} | "
            f"{rate:,.0f} | {last['trained_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--budget", type=duration, default=3600.0, help="training time of each run (60m)")
    parser.add_argument("--out", default="runs/speedrun-methods")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="METHOD:SEED,... (default: the issue's)")
    parser.add_argument("--table-only", action="store_true", help="print the table of what is measured, train nothing")
    args = parser.parse_args()
    runs, out = parse_runs(args.runs), Path(args.out)
    if not args.table_only:
        for method, seed in runs:
            train_and_evaluate(method, seed, out / f"{method}-s{seed}", args)
    text = table(runs, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
