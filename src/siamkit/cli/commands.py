"""The ``siamkit`` commands: thin, each parses its arguments into a library call and prints."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from siamkit.cli.parser import FLAGS
from siamkit.config import Config, build_config, presets_table, read_config_file
from siamkit.errors import CheckpointError, ConfigError, SiamkitError
from siamkit.evaluate import load_encoder, load_eval_data, load_model, record
from siamkit.methods import methods_table
from siamkit.models import export_backbone
from siamkit.models.export import metadata as export_metadata
from siamkit.registry import BACKBONES, DATASETS, EVALUATIONS
from siamkit.runs import RunFolder
from siamkit.train.distributed import resolve_device

# what --resume may change: where things are and how long to go on, never what is trained
RESUMABLE = {
    "train.epochs",
    "train.time_budget",
    "train.device",
    "train.compile",
    "data.data_root",
    "data.eval_data",
    "data.cache_dir",
    "data.num_workers",
    "train.knn_every",
    "train.log_every",
}


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """The config values the user typed: every flag given (a zero is a value) and every ``--set``."""
    values: dict[str, object] = {
        key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None
    }
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set optim.weight_decay=1e-4")
        values[key.strip()] = value.strip()
    return values


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults, then ``--preset`` (or the preset ``--config`` names), ``--config``, the flags, ``--set``."""
    values, preset = read_config_file(args.config) if getattr(args, "config", None) else ({}, None)
    return build_config({**values, **overrides(args)}, preset=args.preset or preset)


def resume_config(args: argparse.Namespace, out: Path) -> Config:
    """The checkpoint's config, with only the changes :data:`RESUMABLE` allows (the trainer
    refuses a new length when a schedule is planned over the run's length). With ``--preset`` or
    ``--config`` (a job script rerun as it is) the config they make must be the checkpoint's."""
    folder = RunFolder(out)
    if not (saved_dict := folder.load_checkpoint().get("config")):
        raise CheckpointError(f"{folder.checkpoint} has no config; it cannot resume a run")
    saved = Config.from_dict(saved_dict)
    if args.preset or args.config:
        new = config_from_args(args)
    else:
        new = build_config({**saved.flat(), **overrides(args)}, _preset_name=saved.preset)
    changed = sorted(k for k, v in new.flat().items() if v != saved.flat()[k])
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        raise ConfigError(
            f"--resume continues the run as it was configured; it cannot change {', '.join(refused)}. "
            f"Only {', '.join(sorted(RESUMABLE))} may change on resume; "
            "start a new run (another --out) otherwise."
        )
    return new


def pretrain(args: argparse.Namespace) -> int:
    from siamkit.pipeline import pretrain as run

    if args.resume and not args.out:
        raise ConfigError(f"--resume {'auto ' if args.resume == 'auto' else ''}needs --out DIR, the run's folder")
    resume = args.resume == "yes" or (args.resume == "auto" and RunFolder(args.out).has_checkpoint())
    if resume:
        out = Path(args.out)
        cfg = resume_config(args, out)
    else:
        cfg = config_from_args(args)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out or f"runs/{cfg.method.name}-{cfg.data.dataset}-{stamp}")
    if args.resume == "auto" and os.environ.get("RANK", "0") == "0":
        print(f"siamkit: --resume auto: {'resuming' if resume else 'starting'} {out}", file=sys.stderr)
    row = run(cfg, out, resume=resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":
        return 0
    print(
        f"done: {out} (checkpoint.pt, metrics.jsonl, config.yaml)"
        + (f"; kNN {row['knn_top1']:.2f}%, 1-NN {row['knn1_top1']:.2f}%" if "knn_top1" in row else "")
    )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """``siamkit eval KIND``: the result is printed first, then appended to the run's evals.jsonl."""
    entry = EVALUATIONS.get(args.kind)
    options = {o.name: o.check(getattr(args, o.name)) for o in entry.options}
    if args.train_subset is not None and args.train_subset < 1:
        raise ConfigError(f"--train-subset must be >= 1, got {args.train_subset}")
    encoder = load_encoder(args.checkpoint)
    size = encoder.config.data.crop_size() if args.eval_data and encoder.config else None
    data = load_eval_data(args.dataset, args.data_root, args.train_subset, eval_data=args.eval_data, image_size=size)
    bar = None
    if entry.progress == "epochs":
        bar = tqdm(total=entry.steps(options), desc=args.kind, file=sys.stderr, leave=False)
        progress = lambda _: bar.update(1)  # noqa: E731
    else:
        progress = True
    result = entry.run(
        encoder, data, device=resolve_device(args.device), precision=args.precision, progress=progress, **options
    )
    if bar is not None:
        bar.close()
    print(json.dumps(result.to_record()) if args.json else result.summary(), flush=True)
    if encoder.run_dir is not None and encoder.run_dir.is_dir():
        try:
            record(result, encoder.run_dir)
        except SiamkitError as e:
            raise type(e)(f"{e}; the result above was not recorded in evals.jsonl") from None
    return 0


def report(args: argparse.Namespace) -> int:
    from siamkit.results import write_report

    print(f"wrote {write_report([Path(p) for p in args.runs], Path(args.out))}")
    return 0


def export(args: argparse.Namespace) -> int:
    model, cfg, ck = load_model(args.checkpoint)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "state_dict":
        torch.save({"config": ck["config"], "model": model.state_dict(), "epoch": ck.get("epoch")}, out)
        print(f"wrote {out}")
        return 0
    state, notes = export_backbone(cfg.model, model.parts, model.backbone.state_dict(), args.format)
    if args.format == "safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise ConfigError("--format safetensors needs pip install 'siamkit[safetensors]'") from None
        save_file(state, str(out), metadata=export_metadata(cfg.model, model.parts))
    else:
        torch.save(state, out)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {out} ({len(state)} tensors, {model.parts.feature_dim}-d features)")
    return 0


def embed(args: argparse.Namespace) -> int:
    from siamkit.evaluate.embed import embed_images

    emb, skipped = embed_images(
        args.checkpoint,
        args.images,
        projector=args.projector,
        batch_size=args.batch_size,
        device=resolve_device(args.device),
        precision=args.precision,
        progress=not args.quiet,
    )
    written = emb.save(args.out)
    if skipped:
        report = written[0].with_suffix(".skipped.tsv")
        report.write_text("path\treason\n" + "".join(f"{p}\t{' '.join(r.split())}\n" for p, r in skipped))
        print(f"skipped {len(skipped)} unreadable file(s), listed in {report}:", file=sys.stderr)
        for p, r in skipped[:10]:
            print(f"  {p}: {r}", file=sys.stderr)
    print(f"embedded {len(emb.paths)} images ({emb.dim}-d {emb.about['output']}) -> {', '.join(map(str, written))}")
    return 0


def neighbors(args: argparse.Namespace) -> int:
    from siamkit.evaluate.embed import Embeddings, contact_sheet, embed_query

    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    emb = Embeddings.load(args.embeddings)
    query: int | object
    if args.query.isdigit():
        query = int(args.query)
        if query >= len(emb.paths):
            raise ConfigError(f"--query {query}: the embeddings have rows 0..{len(emb.paths) - 1}")
        shown = emb.paths[query]
    elif (row := emb.row_of(args.query)) is not None:
        query, shown = row, emb.paths[row]
    elif Path(args.query).is_file():
        query, shown = embed_query(emb, args.query, resolve_device(args.device)), args.query
    else:
        raise ConfigError(f"--query {args.query!r}: not a row index, a path in {args.embeddings}, or an image file")
    found = emb.neighbors(query, args.k)
    print(f"query: {shown}")
    print(f"{'rank':>4}  {'cosine':>7}  {'row':>6}  path")
    for rank, (row, cos) in enumerate(found, start=1):
        print(f"{rank:>4}  {cos:>+7.4f}  {row:>6}  {emb.paths[row]}")
    if args.sheet:
        print(f"wrote {contact_sheet(shown, [(emb.paths[r], c) for r, c in found], args.sheet)}")
    return 0


def experiment(args: argparse.Namespace) -> int:
    from siamkit.cli.experiment import run

    return run(args)


def presets(args: argparse.Namespace) -> int:
    print(presets_table())
    return 0


def methods(args: argparse.Namespace) -> int:
    print(methods_table())
    return 0


def backbones(args: argparse.Namespace) -> int:
    for name, b in BACKBONES.items():
        width = f"width {b.default_width}, " if b.default_width is not None else ""
        print(f"{name:<16} {width}{b.feature_dim(None)}-d features  {b.note}")
    print("timm:NAME        any timm model (pip install 'siamkit[timm]'); arguments in model.backbone_args")
    print("torchvision:NAME any torchvision classification model (pip install 'siamkit[torchvision]')")
    print("pkg.mod:factory  any function returning an nn.Module that maps images to (B, D) features")
    return 0


def datasets(args: argparse.Namespace) -> int:
    for name, d in DATASETS.items():
        root = "needs --data-root" if d.needs_root else "embedded"
        print(f"{name:<12} {root:<18} {d.note}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from siamkit.demo import run_demo

    return run_demo(Path(args.out), epochs=args.epochs, seed=args.seed)
