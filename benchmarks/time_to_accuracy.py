"""Time to accuracy: siamkit's speedrun SimSiam against lightly 1.6.0's SimSiam with its documented
CIFAR-10 settings, both given the same minutes of training on the same machine, one after the other
in one invocation, their kNN measured by the same code.

    .bench-venv/bin/python benchmarks/time_to_accuracy.py --data-root DIR [--budget 60m] [--out DIR]
        [--eval-every 5m] [--lightly-workers 1] [--lightly-precision same|fp32]

siamkit's side is ``siamkit pretrain --preset speedrun --method simsiam --time-budget BUDGET`` itself
(``siamkit.pipeline.pretrain``), with its kNN monitor every epoch, in ``OUT/siamkit``.

lightly's side is the SimSiam model of lightly's CIFAR-10 benchmark
(docs/source/getting_started/benchmarks/cifar10_benchmark.py): ``ResNetGenerator("resnet-18")``
without its classifier plus adaptive average pooling, ``ProjectionHead`` [(512, 2048, BN, ReLU),
(2048, 2048, BN)], ``SimSiamPredictionHead(2048, 512, 2048)``, ``NegativeCosineSimilarity``, SGD lr
0.06 (unscaled), momentum 0.9, weight decay 5e-4, ``CosineAnnealingLR`` over its 200 epochs stepped
once an epoch, batch 128 with ``drop_last``, ``SimSiamTransform(input_size=32, gaussian_blur=0.0)`` on
PIL images in a ``DataLoader``. It trains in a plain PyTorch loop (no Lightning Trainer, which only
adds time) and stops at the first step past the budget, as siamkit's budget does. Its script runs
fp32 on a GPU; here it gets the precision siamkit's side resolves (bf16 autocast and channels_last
on a CPU with native bf16) unless ``--lightly-precision fp32``, so the comparison does not credit
siamkit with the hardware's bf16.

Both clocks count training only (data, augmentation, steps); evaluation is not counted. The curves:
weighted kNN (k = 200, T = 0.1) on the same fixed stratified bank of ``--bank`` training images
(seed 0) and the full test split, measured for both by siamkit's kNN monitor itself
(``siamkit.evaluate.knn_monitor``, at siamkit's precision): siamkit's once an epoch, lightly's
every ``--eval-every`` minutes of training. At the end both encoders get the same final kNN on the full
50,000-image bank in fp32. Written to ``OUT``: ``results.json`` (curves, finals, ratios),
``curves.png``, and the markdown table printed at the end (``--report-only`` redraws both from
``OUT/results.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from speedrun_curves import curve as run_curve
from speedrun_curves import plot_curves
from torch import nn
from tqdm.auto import tqdm
from vs_lightly import CifarPIL, LightlyModel

from siamkit.cli.parser import duration
from siamkit.config import Config, build_config
from siamkit.data import load_cifar
from siamkit.evaluate.api import knn, load_eval_data
from siamkit.evaluate.encoders import Encoder, load_encoder
from siamkit.evaluate.monitor import knn_monitor
from siamkit.pipeline import pretrain
from siamkit.precision import autocast, resolve_precision
from siamkit.runs import RunFolder
from siamkit.train import Monitor
from siamkit.train.memory import keep_freed_memory
from siamkit.train.telemetry import SECONDS_BAR

LIGHTLY_EPOCHS = 200  # the documented max_epochs, over which its cosine schedule runs
LIGHTLY_BATCH = 128


def siamkit_config(args) -> Config:
    """siamkit's side: the speedrun preset at ``--budget``, its kNN monitor every epoch."""
    values = {
        "method.name": "simsiam",
        "data.dataset": "cifar10",
        "data.data_root": args.data_root,
        "train.time_budget": args.budget,
        "train.knn_every": 1,
        "train.knn_train_subset": args.bank,
        "train.device": "cpu",  # lightly's side runs on the CPU
    }
    if args.train_subset is not None:
        values["data.train_subset"] = args.train_subset
    return build_config(values, preset="speedrun")


def run_siamkit(cfg: Config, out: Path, quiet: bool, n_train: int) -> tuple[list[tuple[float, float]], Encoder, dict]:
    pretrain(cfg, out, progress=not quiet)
    minutes, accuracy = run_curve(out)
    last = [r for r in RunFolder(out).read_metrics() if "trained_seconds" in r][-1]
    about = {
        "epochs": last["step"] * cfg.train.batch_size / n_train,  # images seen, in epochs
        "updates": last["step"],
        "trained_minutes": last["trained_seconds"] / 60,
        "images_per_s": last["step"] * cfg.train.batch_size / last["trained_seconds"],
    }
    return list(zip(minutes, accuracy, strict=True)), load_encoder(str(out)), about


def lightly_backbone() -> nn.Module:
    from lightly.models import ResNetGenerator

    resnet = ResNetGenerator("resnet-18")
    return nn.Sequential(*list(resnet.children())[:-1], nn.AdaptiveAvgPool2d(1))


def run_lightly(args, train, data, precision: str, cl: bool, monitor: Monitor) -> tuple:
    """lightly's loop at ``precision`` (channels_last if ``cl``), measured by siamkit's ``monitor``
    on ``data``'s training and test splits."""
    from lightly.transforms import SimSiamTransform

    torch.manual_seed(0)
    model = LightlyModel(lightly_backbone(), 512, "simsiam", total_steps=0)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, LIGHTLY_EPOCHS)
    dataset = CifarPIL(train.images, SimSiamTransform(input_size=32, gaussian_blur=0.0))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=LIGHTLY_BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=args.lightly_workers,
        persistent_workers=args.lightly_workers > 0,
    )
    if len(loader) == 0:
        sys.exit(f"--train-subset must be at least lightly's batch, {LIGHTLY_BATCH}")
    encoder = nn.Sequential(model.backbone, nn.Flatten(1))
    curve = [(0.0, monitor(encoder, data.train, data.test)["knn_top1"])]
    trained, next_eval, updates = 0.0, args.eval_every, 0
    bar = tqdm(total=args.budget, desc="lightly", bar_format=SECONDS_BAR, disable=args.quiet, file=sys.stderr)
    while trained < args.budget:
        model.train()
        t0 = time.perf_counter()
        for (x0, x1), _ in loader:
            if cl:
                x0, x1 = (x.contiguous(memory_format=torch.channels_last) for x in (x0, x1))
            with autocast(precision, "cpu"):
                loss = model.training_step(x0, x1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            updates += 1
            bar.update(min(trained + time.perf_counter() - t0, args.budget) - min(trained, args.budget))
            bar.set_postfix(loss=f"{loss.item():.3f}", kNN=f"{curve[-1][1]:.1f}")
            now = time.perf_counter()  # the clock counts the bookkeeping too, as siamkit's does
            trained, t0 = trained + now - t0, now
            if trained >= args.budget or trained >= next_eval:  # evaluation is not counted
                curve.append((trained / 60, monitor(encoder, data.train, data.test)["knn_top1"]))
                next_eval += args.eval_every
                model.train()
                t0 = time.perf_counter()
            if trained >= args.budget:
                break
        else:  # a whole epoch: the schedule steps once an epoch, as Lightning steps it
            sched.step()
    bar.close()
    about = {
        "epochs": updates * LIGHTLY_BATCH / len(dataset),  # images seen, in epochs
        "updates": updates,
        "trained_minutes": trained / 60,
        "images_per_s": updates * LIGHTLY_BATCH / trained,
    }
    return curve, Encoder(encoder, "lightly SimSiam", "cifar", None, None, None), about


def minutes_to_reach(curve: list[tuple[float, float]], accuracy: float) -> float | None:
    """The first monitored minute at which ``curve`` reached ``accuracy`` (None: never)."""
    return next((m for m, a in curve if a >= accuracy), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="folder holding cifar-10-batches-py (required to measure)")
    parser.add_argument("--budget", type=duration, default=3600.0, help="training time of each side (60m)")
    parser.add_argument("--eval-every", type=duration, default=300.0, help="lightly's monitor interval (5m)")
    parser.add_argument("--bank", type=int, default=10000, help="training images in the monitor's kNN bank")
    parser.add_argument("--lightly-workers", type=int, default=1, help="DataLoader workers (1 is its best on 2 cores)")
    parser.add_argument("--lightly-precision", choices=["same", "fp32"], default="same")
    parser.add_argument("--train-subset", type=int, help="train and bank on this many images (a quick check only)")
    parser.add_argument("--out", default="runs/time-to-accuracy")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="redraw the plot and table from OUT/results.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report_only:
        full_bank = 50_000 if args.train_subset is None else args.train_subset
        report(json.loads((out / "results.json").read_text()), out, min(args.bank, full_bank), full_bank)
        return
    if args.data_root is None:
        parser.error("--data-root is required (unless --report-only)")
    import lightly

    if (out / "siamkit").exists():
        sys.exit(f"{out / 'siamkit'} exists: pass another --out, or remove it to measure again")
    out.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # what siamkit's training does; set first, so both sides run on the same allocator
    cfg = siamkit_config(args)
    precision, cl = resolve_precision(cfg.train.precision, "cpu"), cfg.train.use_channels_last("cpu")
    same = args.lightly_precision == "same"
    lightly_precision, lightly_cl = (precision, cl) if same else ("fp32", False)
    train = load_cifar("cifar10", Path(args.data_root), "train")
    if args.train_subset is not None:
        train = train.subset(args.train_subset)
    data = load_eval_data("cifar10", args.data_root, train_subset=args.train_subset)
    header = (
        f"{args.budget / 60:g} minutes of training each, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"lightly {lightly.__version__}; siamkit at {precision}, lightly at {lightly_precision}"
    )
    print(header, flush=True)

    lightly_side = run_lightly(args, train, data, lightly_precision, lightly_cl, knn_monitor(cfg))
    t_curve, t_enc, t_about = lightly_side
    s_curve, s_enc, s_about = run_siamkit(cfg, out / "siamkit", args.quiet, len(train))
    them = f"lightly {lightly.__version__}"
    sides = {"siamkit speedrun": (s_curve, s_enc, s_about), them: (t_curve, t_enc, t_about)}
    results: dict = {"header": header, "budget_s": args.budget, "sides": {}}
    for name, (curve, enc, about) in sides.items():
        final = knn(enc, data, k=200, weighted=True, temperature=0.1, precision="fp32").top1
        results["sides"][name] = {**about, "curve": curve, "knn_full_bank": final, "knn_monitor_final": curve[-1][1]}
    mine, theirs = results["sides"]["siamkit speedrun"], results["sides"][them]
    reach = minutes_to_reach(s_curve, theirs["knn_monitor_final"])
    results["accuracy_ratio"] = mine["knn_full_bank"] / theirs["knn_full_bank"]
    results["siamkit_minutes_to_lightly_final"] = reach
    results["minutes_ratio"] = theirs["trained_minutes"] / reach if reach else None  # None also at 0 minutes
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report(results, out, min(args.bank, len(data.train)), len(data.train))


def report(results: dict, out: Path, bank: int, full_bank: int) -> None:
    """``out/curves.png`` and the markdown table, from ``results`` (``results.json``'s content)."""
    bank_name = f"{bank // 1000}k"
    title = f"SimSiam on CIFAR-10, {results['header'].split(';')[0]}"
    curves = {name: tuple(zip(*side["curve"], strict=True)) for name, side in results["sides"].items()}
    plot_curves(out / "curves.png", curves, title, bank_name)
    print(f"\n| side | epochs | updates | img/s | kNN, {bank_name} bank | kNN, {full_bank:,} bank |")
    print("|---|---|---|---|---|---|")
    for name, r in results["sides"].items():
        print(
            f"| {name} | {r['epochs']:.1f} | {r['updates']} | {r['images_per_s']:.0f} | "
            f"{r['knn_monitor_final']:.2f} | {r['knn_full_bank']:.2f} |"
        )
    reach, theirs = results["siamkit_minutes_to_lightly_final"], list(results["sides"].values())[1]
    reached = "not within the budget" if reach is None else f"{reach:.2f} minutes" if reach else "initialisation"
    ratio = f" ({results['minutes_ratio']:.1f}x faster)" if reach else ""
    print(
        f"\naccuracy ratio ({full_bank:,} bank): {results['accuracy_ratio']:.2f}x; "
        f"siamkit reached lightly's final {theirs['knn_monitor_final']:.2f} % ({bank_name} bank) "
        f"after {reached}{ratio}; records in {out}"
    )


if __name__ == "__main__":
    main()
