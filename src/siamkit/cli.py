"""The ``siamkit`` command line: thin, it parses, builds a config and calls the library."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from siamkit.config import Config, ConfigError, build_config, presets_table
from siamkit.methods import methods_table

# flag -> config key: every flag overrides the preset
FLAGS = {
    "method": "method.name",
    "dataset": "data.dataset",
    "data_root": "data.data_root",
    "download": "data.download",
    "backbone": "model.backbone",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "views": "method.views",
    "lr": "optim.lr",
    "seed": "train.seed",
    "precision": "train.precision",
    "device": "train.device",
}
# what --resume may change: where things are and how long to go on, never what is trained
RESUMABLE = {
    "train.epochs",
    "train.device",
    "data.data_root",
    "data.num_workers",
    "train.knn_every",
    "train.log_every",
}


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag)}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set optim.weight_decay=1e-4")
        values[key.strip()] = value.strip()
    return values


def config_from_args(args: argparse.Namespace) -> Config:
    return build_config(_overrides(args), preset=args.preset)


def _resume_config(args: argparse.Namespace, out: Path) -> Config:
    """The checkpoint's config, with only the changes :data:`RESUMABLE` allows."""
    from siamkit.train.checkpoint import load_checkpoint

    if args.preset:
        raise ConfigError("--resume continues the run as it was configured; drop --preset")
    saved = Config.from_dict(load_checkpoint(out)["config"])
    new = build_config({**saved.flat(), **_overrides(args)}, _preset_name=saved.preset)
    changed = sorted(k for k, v in new.flat().items() if v != saved.flat()[k])
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        raise ConfigError(
            f"--resume continues the run as it was configured; it cannot change {', '.join(refused)}. "
            f"Only {', '.join(sorted(RESUMABLE))} may change on resume; "
            "start a new run (another --out) otherwise."
        )
    return new


def _pretrain(args: argparse.Namespace) -> int:
    from siamkit.train.loop import pretrain

    if args.resume:
        if not args.out:
            raise ConfigError("--resume needs --out DIR, the folder of the run to continue")
        out = Path(args.out)
        cfg = _resume_config(args, out)
    else:
        cfg = config_from_args(args)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out or f"runs/{cfg.method.name}-{cfg.data.dataset}-{stamp}")
    row = pretrain(cfg, out, resume=args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":
        return 0
    print(
        f"done: {out} (checkpoint.pt, metrics.jsonl, config.yaml)"
        + (f"; kNN {row['knn_top1']:.2f}%, 1-NN {row['knn1_top1']:.2f}%" if "knn_top1" in row else "")
    )
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from siamkit.experiments import EXPERIMENTS, PROTOCOL, prepare_data, run_experiment, run_status

    root = Path(args.root)
    protocol = {**PROTOCOL, "data.data_root": str(root / "data")}
    if args.report:
        from siamkit.results import write_results

        page = Path(args.docs) / "results.md"
        if not page.exists():
            raise ConfigError(f"{page} not found: --docs must name the folder holding results.md")
        missing = write_results(root, Path(args.docs), EXPERIMENTS)
        print(f"updated {page}" + (f"; no markers for: {', '.join(missing)}" if missing else ""))
        return 0
    archive = Path(args.archive) if args.archive else None
    if args.check:
        from siamkit.results import check_reproduction, seed_spread

        if args.name not in EXPERIMENTS:
            raise ConfigError(f"--check needs an experiment name, one of {', '.join(EXPERIMENTS)}")
        archive = archive or Path(args.docs) / "results" / "runs"
        table, ok = check_reproduction(EXPERIMENTS[args.name], root, archive, seed_spread(EXPERIMENTS, archive))
        print(table)
        print(f"{args.name}: {'reproduced' if ok else 'NOT reproduced'} within 2x the seed spread of {archive}")
        return 0 if ok else 1
    if args.list or not args.name:
        for exp in EXPERIMENTS.values():
            states = [run_status(r, root, protocol, archive) for r in exp.runs]
            done = sum(s.trained or bool(s.diverged) for s in states)
            print(f"{exp.name:<13} {done}/{len(states)} runs trained  {exp.claim}")
        return 0
    if args.name not in (*EXPERIMENTS, "all"):
        raise ConfigError(f"unknown experiment {args.name!r}; choose one of {', '.join(EXPERIMENTS)}, or all")
    eval_data = prepare_data(root, Path(args.shared)) if not args.dry_run else {}
    suite = tuple(EXPERIMENTS.values())
    for exp in suite if args.name == "all" else [EXPERIMENTS[args.name]]:
        run_experiment(exp, root, protocol, eval_data, dry_run=args.dry_run, archive=archive, others=suite)
    return 0


def _presets(args: argparse.Namespace) -> int:
    print(presets_table())
    return 0


def _methods(args: argparse.Namespace) -> int:
    print(methods_table())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from siamkit.demo import run_demo

    return run_demo(Path(args.out), epochs=args.epochs)


def _lazy(name: str):
    """A command from siamkit.evaluate.commands, imported only when it runs."""

    def run(args: argparse.Namespace) -> int:
        from siamkit.evaluate import commands

        return getattr(commands, name)(args)

    return run


def _add_eval_parsers(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate a frozen encoder: knn, linear, transfer, tsne")
    kinds = ev.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
        p.add_argument("--checkpoint", required=True, help="checkpoint.pt, a run folder, or random:BACKBONE[:WIDTH]")
        p.add_argument("--dataset", required=True, help="digits, cifar10, cifar100 or imagefolder")
        p.add_argument("--data-root")
        p.add_argument("--device", default="auto")
        p.add_argument("--train-subset", type=int, help="use a fixed stratified subset of the training split")
        p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="feature extraction precision")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    p = kinds.add_parser("knn", help="k-nearest-neighbour accuracy (cosine similarity)")
    common(p)
    p.add_argument("--k", type=int, default=1, help="neighbours (1: GSG's CIFAR-10 number)")
    p.add_argument("--weighted", action="store_true", help="similarity-weighted vote (Wu et al. 2018)")
    p.add_argument("--temperature", type=float, default=0.1)
    p.set_defaults(func=_lazy("eval_knn"))
    p = kinds.add_parser("linear", help="linear probe on the frozen backbone")
    common(p)
    p.add_argument("--epochs", type=int, default=None, help="default: the protocol's 90")
    p.add_argument(
        "--protocol",
        choices=["cifar", "imagenet"],
        default="cifar",
        help="cifar: SGD lr 30 batch 256 cosine; imagenet: LARS batch 4096",
    )
    p.add_argument("--augment", action="store_true", help="train through the backbone on random crops and flips")
    p.set_defaults(func=_lazy("eval_linear"))
    p = kinds.add_parser("transfer", help="logistic regression on frozen features (Ericsson et al. 2021)")
    common(p)
    p.set_defaults(func=_lazy("eval_transfer"))
    p = kinds.add_parser("tsne", help="t-SNE of the test features, coloured by class, as a PNG")
    common(p)
    p.add_argument("--png", required=True)
    p.add_argument("--points", type=int, default=5000, help="at most this many test images, stratified")
    p.set_defaults(func=_lazy("eval_tsne"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siamkit",
        description="Self-supervised learning with Siamese networks: SimSiam, BYOL, GSG, EnSiam.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("pretrain", help="pretrain an encoder with a registered method")
    p.add_argument("--method", help="a registered method (siamkit methods)")
    p.add_argument("--dataset", help="digits, cifar10, cifar100 or imagefolder")
    p.add_argument("--data-root", help="folder holding the dataset")
    p.add_argument("--backbone", help="resnet18_cifar, resnet10_cifar, resnet18, resnet50")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size (split across processes)")
    p.add_argument("--views", type=int, help="views per image K (K-view methods)")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--out", help="run folder (default runs/METHOD-DATASET-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--download", action="store_true", default=False, help="fetch CIFAR when missing")
    p.add_argument("--preset", help="named settings (siamkit presets); flags override them")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=1e-4")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_pretrain)

    _add_eval_parsers(sub)
    p = sub.add_parser("report", help="compare runs: a Markdown table and plots")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report", help="folder for report.md and the plots (default ./report)")
    p.set_defaults(func=_lazy("report"))
    p = sub.add_parser("export", help="write a checkpoint's backbone for use elsewhere")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", choices=["torchvision", "state_dict"], required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_lazy("export"))

    p = sub.add_parser("experiment", help="run one of the papers' experiments at CPU scale (resumable)")
    p.add_argument("name", nargs="?", help="table1, guiding, collapse, ensemble, transfer, shared-views, or all")
    p.add_argument("--root", default="experiments", help="folder for runs and exported data (default ./experiments)")
    p.add_argument("--shared", default="../shared/data", help="folder of the packed datasets and export.py")
    p.add_argument(
        "--archive",
        help="copy each finished run's records (no weights) here, and skip runs finished here: "
        "commit it to carry a suite over to another machine (the results page uses docs/results/runs)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would run, run nothing")
    p.add_argument("--list", action="store_true", help="list the experiments and the state of their runs")
    p.add_argument(
        "--report",
        action="store_true",
        help="archive the runs' records under DOCS/results/runs and rebuild the tables and plots of DOCS/results.md",
    )
    p.add_argument("--docs", default="docs", help="the docs folder holding results.md (default ./docs)")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare NAME's runs finished under --root with the archived ones (--archive, default "
        "DOCS/results/runs): each final number within 2x the seed spread; exit 1 if not",
    )
    p.set_defaults(func=_experiment)

    p = sub.add_parser("presets", help="list the named presets and what each reproduces")
    p.set_defaults(func=_presets)
    p = sub.add_parser("methods", help="list the registered methods")
    p.set_defaults(func=_methods)
    p = sub.add_parser("demo", help="pretrain simsiam-gsg on the embedded digits, compare with a random encoder")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo; replaced)")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epoch count")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from siamkit.data.datasets import DataError
    from siamkit.evaluate.report import ReportError
    from siamkit.train.checkpoint import CheckpointError
    from siamkit.train.loop import Interrupted, TrainingError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Interrupted as e:
        print(f"siamkit: {e}", file=sys.stderr)
        return 130
    except (ConfigError, DataError, TrainingError, CheckpointError, ReportError) as e:
        print(f"siamkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamkit: interrupted", file=sys.stderr)
        return 130
