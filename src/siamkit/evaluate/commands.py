"""The ``siamkit eval``, ``report`` and ``export`` commands: load, evaluate, print, record."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from siamkit.config import ConfigError, build_config
from siamkit.data import ImageSet, load_datasets
from siamkit.evaluate.encoders import Encoder, load_encoder, load_model
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.knn import knn_accuracy
from siamkit.evaluate.linear import PROBE_PRESETS, ProbeConfig, linear_probe, linear_probe_augmented
from siamkit.evaluate.transfer import logistic_transfer, split_train_val
from siamkit.evaluate.tsne import stratified_indices, tsne_png
from siamkit.train.distributed import resolve_device


@dataclass
class EvalSetup:
    encoder: Encoder
    train: ImageSet
    test: ImageSet
    recipe: str  # the normalisation: the encoder's pretraining recipe, else the dataset's
    size: int
    device: torch.device
    dataset: str
    precision: str = "fp32"


def setup(args) -> EvalSetup:
    values: dict[str, Any] = {"data.dataset": args.dataset}
    if args.data_root:
        values["data.data_root"] = args.data_root
    data_cfg = build_config(values).data
    encoder = load_encoder(args.checkpoint)
    device = resolve_device(args.device)
    encoder.backbone.to(device)
    train, test = load_datasets(data_cfg)
    if getattr(args, "train_subset", None):
        train = train.subset(args.train_subset)
    return EvalSetup(
        encoder,
        train,
        test,
        encoder.recipe or data_cfg.resolved_recipe(),
        data_cfg.crop_size(),
        device,
        args.dataset,
        args.precision,
    )


def features(s: EvalSetup, data: ImageSet, normalize: bool):
    return extract_features(
        s.encoder.backbone, data, s.recipe, s.size, s.device, precision=s.precision, normalize=normalize, progress=True
    )


def finish(s: EvalSetup, result: dict[str, Any], as_json: bool, human: str) -> int:
    """Print the result (one JSON object on stdout with ``--json``) and append it to the run's
    ``evals.jsonl`` when the encoder comes from a run folder."""
    result = {
        "checkpoint": s.encoder.name,
        "dataset": s.dataset,
        "epoch": s.encoder.epoch,
        "precision": s.precision,
        **result,
    }
    if s.encoder.run_dir is not None and s.encoder.run_dir.is_dir():
        with open(s.encoder.run_dir / "evals.jsonl", "a") as f:
            f.write(json.dumps({**result, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    print(json.dumps(result) if as_json else human)
    return 0


def eval_knn(args) -> int:
    s = setup(args)
    t0 = time.perf_counter()
    f_train, y_train = features(s, s.train, normalize=True)
    f_test, y_test = features(s, s.test, normalize=True)
    temperature = args.temperature if args.weighted else None
    top1 = knn_accuracy(f_train, y_train, f_test, y_test, k=args.k, temperature=temperature)
    result = {
        "eval": "knn",
        "top1": top1,
        "k": args.k,
        "weighted": args.weighted,
        "temperature": temperature,
        "train_images": len(s.train),
        "test_images": len(s.test),
        "seconds": time.perf_counter() - t0,
    }
    vote = f"weighted (T={temperature})" if args.weighted else "majority"
    return finish(s, result, args.json, f"kNN top-1 {top1:.2f}% (k={args.k}, {vote} vote) on {s.test.name}")


def eval_linear(args) -> int:
    s = setup(args)
    cfg = PROBE_PRESETS[args.protocol]
    cfg = ProbeConfig(**{**cfg.__dict__, "epochs": args.epochs or cfg.epochs})
    weights = {k: v.clone() for k, v in s.encoder.backbone.state_dict().items()}
    f_test, y_test = features(s, s.test, normalize=False)
    bar = tqdm(total=cfg.epochs, desc="linear probe", unit="epoch", file=sys.stderr, leave=False)
    if args.augment:
        result = linear_probe_augmented(
            s.encoder.backbone,
            s.train,
            f_test,
            y_test,
            s.recipe,
            s.size,
            cfg,
            s.device,
            progress=lambda e: bar.update(1),
        )
    else:
        f_train, y_train = features(s, s.train, normalize=False)
        result = linear_probe(f_train, y_train, f_test, y_test, cfg, progress=lambda e: bar.update(1))
    bar.close()
    after = s.encoder.backbone.state_dict()
    if any(not torch.equal(weights[k], after[k]) for k in weights):  # SimSiam's sanity check
        raise RuntimeError("the backbone changed during linear probing; this is a bug in siamkit")
    result = {"eval": "linear", **result, "epochs": cfg.epochs, "protocol": args.protocol, "augment": args.augment}
    return finish(s, result, args.json, f"linear probe top-1 {result['top1']:.2f}% on {s.test.name}")


def eval_transfer(args) -> int:
    s = setup(args)
    f_train, y_train = features(s, s.train, normalize=False)
    f_test, y_test = features(s, s.test, normalize=False)
    tr, va = split_train_val(y_train.cpu())
    bar = tqdm(total=45, desc="weight decay grid", file=sys.stderr, leave=False)
    result = logistic_transfer(
        f_train[tr].cpu(),
        y_train[tr].cpu(),
        f_train[va].cpu(),
        y_train[va].cpu(),
        f_test.cpu(),
        y_test.cpu(),
        progress=lambda i: bar.update(1),
    )
    bar.close()
    result = {"eval": "transfer", **result, "train_images": len(tr), "val_images": len(va)}
    human = f"transfer (logistic regression) top-1 {result['top1']:.2f}% on {s.test.name}, wd {result['wd']:.2g}"
    return finish(s, result, args.json, human)


def eval_tsne(args) -> int:
    s = setup(args)
    f_test, y_test = features(s, s.test, normalize=True)
    keep = stratified_indices(y_test.cpu(), args.points)
    title = f"t-SNE of {s.test.name} features: {Path(s.encoder.name).parent.name or s.encoder.name}"
    path = tsne_png(f_test[keep].cpu(), y_test[keep].cpu(), s.test.classes, Path(args.png), title)
    return finish(s, {"eval": "tsne", "png": str(path), "points": len(keep)}, args.json, f"wrote {path}")


def report(args) -> int:
    from siamkit.evaluate.report import write_report

    path = write_report([Path(p) for p in args.runs], Path(args.out))
    print(f"wrote {path}")
    return 0


def export(args) -> int:
    model, _, ck = load_model(args.checkpoint)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "torchvision":
        width = model.backbone.width
        if width != 64:
            raise ConfigError(
                f"torchvision's ResNets have width 64; this backbone has width {width}. Use --format state_dict."
            )
        torch.save(model.backbone.state_dict(), out)
        if model.backbone.stem == "cifar":
            print(
                "note: CIFAR stem: before loading, set model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and "
                "model.maxpool = nn.Identity()",
                file=sys.stderr,
            )
        print("load with: model.fc = torch.nn.Identity(); model.load_state_dict(torch.load(PATH))", file=sys.stderr)
    else:
        torch.save({"config": ck["config"], "model": model.state_dict(), "epoch": ck.get("epoch")}, out)
    print(f"wrote {out}")
    return 0
