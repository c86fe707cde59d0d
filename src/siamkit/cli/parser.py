"""The ``siamkit`` argument parser, built from the registries so every entry shows up in help."""

from __future__ import annotations

import argparse
import re

from siamkit.config import PRECISIONS
from siamkit.models.export import EXPORT_FORMATS
from siamkit.registry import BACKBONES, DATASETS, EVALUATIONS, METHODS

# flag -> config key: every flag overrides the preset
FLAGS = {
    "method": "method.name",
    "dataset": "data.dataset",
    "data_root": "data.data_root",
    "eval_data": "data.eval_data",
    "image_size": "data.image_size",
    "download": "data.download",
    "backbone": "model.backbone",
    "epochs": "train.epochs",
    "time_budget": "train.time_budget",
    "batch_size": "train.batch_size",
    "views": "method.views",
    "lr": "optim.lr",
    "seed": "train.seed",
    "precision": "train.precision",
    "device": "train.device",
}


def duration(text: str) -> float:
    """Seconds in ``90s``, ``60m``, ``1.5h``, ``1h30m`` (a bare number is seconds)."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    elif re.fullmatch(r"(\d+(\.\d+)?[hms])+", t):
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
        seconds = sum(float(n) * scale[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", t))
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 90s, 60m, 1.5h or 1h30m")
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a time budget must be longer than 0")
    return seconds


def resume_mode(text: str) -> str:
    if text not in ("yes", "auto"):
        raise argparse.ArgumentTypeError(f"--resume takes no value, or 'auto'; got {text!r}")
    return text


def _names(registry) -> str:
    return ", ".join(registry.names())


def add_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-backbone",
        action="append",
        metavar="MODULE:FACTORY",
        help="allow importing this package.module:factory backbone that a checkpoint or config file names",
    )


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain an encoder with a registered method")
    p.add_argument("--method", help=f"a registered method: {_names(METHODS)}")
    p.add_argument("--dataset", help=f"a registered dataset: {_names(DATASETS)}")
    p.add_argument("--data-root", help="folder holding the dataset (for --dataset folder: any folder tree of images)")
    p.add_argument(
        "--eval-data",
        metavar="DIR",
        help="labelled data for the kNN monitor: DIR/train/<class>, DIR/val/<class>, or a labels CSV",
    )
    p.add_argument(
        "--image-size",
        type=int,
        help="image resolution in px (data.image_size): evaluation's, and training's unless data.train_size is set",
    )
    p.add_argument(
        "--backbone",
        help=f"a registered backbone ({_names(BACKBONES)}), timm:NAME, torchvision:NAME or package.module:factory",
    )
    p.add_argument("--epochs", type=int, help="epochs to train (with --time-budget: at most)")
    p.add_argument(
        "--time-budget",
        type=duration,
        metavar="DURATION",
        help="train for this long (e.g. 90s, 60m, 1.5h, 1h30m; evaluation not counted), schedules planned over it",
    )
    p.add_argument("--batch-size", type=int, help="global batch size (split across processes)")
    p.add_argument("--views", type=int, help="views per image K (K-view methods)")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=list(PRECISIONS))
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--out", help="run folder (default runs/METHOD-DATASET-TIME)")
    p.add_argument(
        "--resume",
        nargs="?",
        const="yes",
        type=resume_mode,
        metavar="auto",
        help="continue the run in --out from its checkpoint; --resume auto: continue when --out holds a "
        "checkpoint, else start it (for job schedulers that rerun a command)",
    )
    p.add_argument(
        "--config", metavar="FILE.yaml", help="settings from a YAML file (a run's config.yaml reproduces it)"
    )
    p.add_argument("--download", action="store_true", default=None, help="fetch CIFAR when missing")
    p.add_argument("--preset", help="named settings (siamkit presets); --config, flags and --set override them")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=1e-4")
    p.add_argument("--quiet", action="store_true", help="no progress bars (training; decoding, caching folders)")
    add_trust(p)
    p.set_defaults(command="pretrain")


def _add_eval(sub) -> None:
    ev = sub.add_parser("eval", help=f"evaluate a frozen encoder: {_names(EVALUATIONS)}")
    kinds = ev.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, entry in EVALUATIONS.items():
        p = kinds.add_parser(name, help=entry.help)
        p.add_argument("--checkpoint", required=True, help="checkpoint.pt, a run folder, or random:BACKBONE[:WIDTH]")
        p.add_argument("--dataset", help=f"a registered labelled dataset: {_names(DATASETS)}")
        p.add_argument("--data-root")
        p.add_argument(
            "--eval-data",
            metavar="DIR",
            help="instead of --dataset: labelled data of your own, DIR/train/<class> and DIR/val/<class>, "
            "or a labels CSV (path,label[,split]); evaluated at the encoder's training resolution",
        )
        p.add_argument("--device", default="auto")
        p.add_argument("--train-subset", type=int, help="use a fixed stratified subset of the training split")
        p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="feature extraction precision")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        add_trust(p)
        for o in entry.options:
            if o.type is bool:
                action = argparse.BooleanOptionalAction if o.default else "store_true"
                p.add_argument(o.flag, dest=o.name, action=action, default=bool(o.default), help=o.help)
            else:
                kw = {"choices": list(o.choices)} if o.choices else {}
                p.add_argument(
                    o.flag, dest=o.name, type=o.type, default=o.default, required=o.required, help=o.help, **kw
                )
    ev.set_defaults(command="eval")


def _add_experiment(sub) -> None:
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
    p.set_defaults(command="experiment")


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="write one embedding per image with a pretrained encoder")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt or a run folder")
    p.add_argument("--images", required=True, nargs="+", metavar="DIR_OR_FILE", help="image files and/or folders")
    p.add_argument("--out", required=True, help="FILE: writes FILE.npy, FILE.csv, FILE.json (and FILE.parquet)")
    p.add_argument("--projector", action="store_true", help="the projector's output instead of backbone features")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_trust(p)
    p.set_defaults(command="embed")
    p = sub.add_parser("neighbors", help="the nearest images to a query in an embeddings file, by cosine")
    p.add_argument("--embeddings", required=True, help="the FILE (or FILE.npy) siamkit embed wrote")
    p.add_argument("--query", required=True, help="a row index, an image path in the file, or a new image file")
    p.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    p.add_argument("--sheet", metavar="PNG", help="also draw the query and its neighbours as a contact sheet")
    p.add_argument("--device", default="auto")
    add_trust(p)
    p.set_defaults(command="neighbors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siamkit",
        description="Self-supervised learning with Siamese networks: SimSiam, BYOL, GSG, EnSiam.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_pretrain(sub)
    _add_eval(sub)
    p = sub.add_parser("report", help="compare runs: a Markdown table and plots")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report", help="folder for report.md and the plots (default ./report)")
    p = sub.add_parser("export", help="write a checkpoint's backbone for use elsewhere")
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--format",
        choices=list(EXPORT_FORMATS),
        required=True,
        help="; ".join(f"{k}: {v}" for k, v in EXPORT_FORMATS.items()),
    )
    p.add_argument("--out", required=True)
    add_trust(p)
    _add_experiment(sub)
    _add_embed(sub)
    sub.add_parser("presets", help="list the named presets and what each reproduces")
    sub.add_parser("methods", help="list the registered methods")
    sub.add_parser("backbones", help="list the registered backbones")
    sub.add_parser("datasets", help="list the registered datasets")
    p = sub.add_parser("demo", help="pretrain simsiam-gsg on the embedded digits, compare with a random encoder")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo; replaced)")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epoch count")
    p.add_argument("--seed", type=int, default=None, help="training seed (default the digits preset's, 0)")
    return parser
