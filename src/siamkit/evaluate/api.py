"""The evaluations as library calls: an encoder and labelled data in, a typed result out.

    enc = load_encoder("runs/gsg")                     # or "random:resnet18_cifar"
    data = load_eval_data("cifar10", "data/")
    print(knn(enc, data, k=200, weighted=True).top1)

The command line (``siamkit eval``) and the experiment suite both call these functions.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from siamkit.config import build_config
from siamkit.data import ImageSet, load_datasets, load_eval_splits
from siamkit.errors import ConfigError
from siamkit.evaluate.encoders import Encoder
from siamkit.evaluate.features import extract_features
from siamkit.evaluate.finetune import FinetuneConfig
from siamkit.evaluate.finetune import finetune as finetune_copy
from siamkit.evaluate.knn import knn_accuracy
from siamkit.evaluate.linear import PROBE_PRESETS, ProbeConfig, linear_probe, linear_probe_augmented
from siamkit.evaluate.results import EvalResult, FinetuneResult, KnnResult, LinearResult, TransferResult, TsneResult
from siamkit.evaluate.transfer import logistic_transfer, split_train_val
from siamkit.evaluate.tsne import tsne_png
from siamkit.runs import RunFolder
from siamkit.splits import stratified_subset


@dataclass(frozen=True)
class EvalData:
    """Labelled train and test splits, and how images are prepared for the encoder unless the
    encoder says otherwise (the recipe it was pretrained with sets the normalisation)."""

    name: str  # the dataset's registry name
    train: ImageSet
    test: ImageSet
    recipe: str
    size: int


def load_eval_data(
    dataset: str | None = None,
    data_root: str | None = None,
    train_subset: int | None = None,
    *,
    eval_data: str | Path | None = None,
    image_size: int | None = None,
) -> EvalData:
    """A registered dataset's splits, or (``eval_data``) labelled data of your own:
    ``DIR/train/<class>`` and ``DIR/val/<class>`` (or ``test/``), or a labels CSV. ``image_size``:
    the resolution to evaluate at (default: the dataset's recipe's); ``train_subset`` keeps a fixed
    stratified subset of training images."""
    if (dataset is None) == (eval_data is None):
        raise ConfigError(
            "evaluate on a registered dataset (--dataset NAME) or on labelled data (--eval-data DIR), one of the two"
        )
    values: dict[str, object] = {"data.dataset": dataset or "imagefolder"}
    if data_root is not None or eval_data is not None:
        values["data.data_root"] = str(data_root if eval_data is None else eval_data)
    if image_size is not None:
        values["data.image_size"] = image_size
    cfg = build_config(values).data
    if eval_data is not None:
        train, test = load_eval_splits(eval_data, cfg)
    else:
        train, test = load_datasets(cfg)
        if test is None or not train.labelled:
            raise ConfigError(f"{dataset} is unlabeled; evaluate on labelled data with --eval-data DIR")
    if train_subset is not None:
        train = train.subset(train_subset)
    return EvalData(dataset or str(eval_data), train, test, cfg.resolved_recipe(), cfg.crop_size())


def _features(enc: Encoder, data: EvalData, split: ImageSet, device, precision: str, normalize: bool, progress: bool):
    recipe = enc.recipe or data.recipe
    return extract_features(
        enc.backbone, split, recipe, data.size, device, precision=precision, normalize=normalize, progress=progress
    )


def _about(enc: Encoder, data: EvalData, precision: str) -> dict:
    return {"checkpoint": enc.name, "dataset": data.name, "epoch": enc.epoch, "precision": precision}


def knn(
    enc: Encoder,
    data: EvalData,
    *,
    k: int = 1,
    weighted: bool = False,
    temperature: float = 0.1,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress: bool = False,
) -> KnnResult:
    """kNN top-1 on L2-normalised features: majority vote, or Wu et al.'s weighted vote."""
    enc.backbone.to(device)
    t0 = time.perf_counter()
    f_train, y_train = _features(enc, data, data.train, device, precision, True, progress)
    f_test, y_test = _features(enc, data, data.test, device, precision, True, progress)
    t = temperature if weighted else None
    top1 = knn_accuracy(f_train, y_train, f_test, y_test, k=k, temperature=t)
    return KnnResult(
        **_about(enc, data, precision),
        top1=top1,
        k=k,
        weighted=weighted,
        temperature=t,
        train_images=len(data.train),
        test_images=len(data.test),
        seconds=time.perf_counter() - t0,
    )


def linear(
    enc: Encoder,
    data: EvalData,
    *,
    epochs: int | None = None,
    protocol: str = "cifar",
    augment: bool = False,
    label_fraction: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress=None,
) -> LinearResult:
    """A linear classifier on the frozen backbone (``protocol``: cifar or imagenet), trained on
    every label or on ``label_fraction`` of them (balanced per class, drawn with ``seed``). The
    backbone's weights and statistics are checked unchanged afterwards. ``progress(epoch)`` is
    called per epoch."""
    base = PROBE_PRESETS[protocol]
    epochs = epochs if epochs is not None else base.epochs
    cfg = ProbeConfig(**{**base.__dict__, "epochs": epochs, "seed": seed})
    data = _few_labels(data, label_fraction, seed)
    enc.backbone.to(device)
    weights = {k: v.clone() for k, v in enc.backbone.state_dict().items()}
    f_test, y_test = _features(enc, data, data.test, device, precision, False, progress is not None)
    if augment:
        recipe = enc.recipe or data.recipe
        out = linear_probe_augmented(
            enc.backbone, data.train, f_test, y_test, recipe, data.size, cfg, device, precision, progress
        )
    else:
        f_train, y_train = _features(enc, data, data.train, device, precision, False, progress is not None)
        out = linear_probe(f_train, y_train, f_test, y_test, cfg, progress=progress)
    after = enc.backbone.state_dict()
    if any(not torch.equal(weights[k], after[k]) for k in weights):  # SimSiam's sanity check
        raise RuntimeError("the backbone changed during linear probing; this is a bug in siamkit")
    return LinearResult(
        **_about(enc, data, precision),
        **out,
        epochs=cfg.epochs,
        protocol=protocol,
        augment=augment,
        label_fraction=label_fraction,
        train_images=len(data.train),
    )


def finetune(
    enc: Encoder,
    data: EvalData,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    label_fraction: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress=None,
) -> FinetuneResult:
    """The whole backbone fine-tuned with a linear head (:mod:`siamkit.evaluate.finetune`) on every
    label or ``label_fraction`` of them (balanced per class, drawn with ``seed``); the encoder
    itself is not changed. ``progress(epoch)`` is called per epoch."""
    base = FinetuneConfig()
    cfg = dataclasses.replace(
        base,
        epochs=epochs if epochs is not None else base.epochs,
        lr=lr if lr is not None else base.lr,
        seed=seed,
    )
    data = _few_labels(data, label_fraction, seed)
    recipe = enc.recipe or data.recipe
    out = finetune_copy(enc.backbone, data.train, data.test, recipe, data.size, cfg, device, precision, progress)
    return FinetuneResult(
        **_about(enc, data, precision),
        **out,
        epochs=cfg.epochs,
        lr=cfg.lr,
        label_fraction=label_fraction,
        train_images=len(data.train),
    )


def _few_labels(data: EvalData, fraction: float | None, seed: int) -> EvalData:
    """``data`` with ``fraction`` of its training labels (balanced per class), or all of them."""
    if fraction is None:
        return data
    return dataclasses.replace(data, train=data.train.label_fraction(fraction, seed))


def transfer(
    enc: Encoder,
    data: EvalData,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress=None,
) -> TransferResult:
    """Logistic regression on frozen features, weight decay chosen on a stratified 20 % split."""
    enc.backbone.to(device)
    f_train, y_train = _features(enc, data, data.train, device, precision, False, progress is not None)
    f_test, y_test = _features(enc, data, data.test, device, precision, False, progress is not None)
    tr, va = split_train_val(y_train.cpu())
    out = logistic_transfer(
        f_train[tr].cpu(),
        y_train[tr].cpu(),
        f_train[va].cpu(),
        y_train[va].cpu(),
        f_test.cpu(),
        y_test.cpu(),
        progress=progress,
    )
    return TransferResult(**_about(enc, data, precision), **out, train_images=len(tr), val_images=len(va))


def tsne(
    enc: Encoder,
    data: EvalData,
    *,
    png: str | Path,
    points: int = 5000,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress: bool = False,
) -> TsneResult:
    """t-SNE of at most ``points`` test images (stratified), coloured by class, saved to ``png``."""
    enc.backbone.to(device)
    f_test, y_test = _features(enc, data, data.test, device, precision, True, progress)
    keep = stratified_subset(y_test.cpu(), points)
    title = f"t-SNE of {data.test.name} features: {Path(enc.name).parent.name or enc.name}"
    path = tsne_png(f_test[keep].cpu(), y_test[keep].cpu(), data.test.classes, Path(png), title)
    return TsneResult(**_about(enc, data, precision), png=str(path), points=len(keep))


def record(result: EvalResult, folder: str | Path, with_time: bool = True) -> None:
    """Append ``result`` to ``folder/evals.jsonl`` (with the time it was recorded)."""
    row = result.to_record()
    if with_time:
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    run = RunFolder(folder)
    run.create()
    run.append_eval(row)
