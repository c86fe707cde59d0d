"""Backbones from other libraries: ``timm:NAME``, ``torchvision:NAME`` and ``package.module:factory``.

Each becomes a :class:`~siamkit.models.backbones.Backbone` entry on the fly. The module is the
library's own model with its classifier replaced by the identity, so its ``state_dict`` has the
library's keys (export and ``model.init`` rely on that). The feature dimension is found, not
configured: timm's ``num_features``, torchvision's classifier input, or one forward pass.

``model.small_stem=true`` swaps a ResNet-style stem (``conv1`` + ``maxpool``) for a 3x3 stride-1
convolution and no pool (the CIFAR stem of GSG appendix C.2); other architectures take their own
arguments in ``model.backbone_args`` (a ViT: ``{img_size: 32, patch_size: 4}``).

A ``module:factory`` backbone imports and runs code, so siamkit imports one only when the person
running it names it: on the command line (``--backbone``, ``--set model.backbone=``,
``--trust-backbone``), in ``$SIAMKIT_TRUST_BACKBONE`` (comma-separated), or in Python with
:func:`trust_backbone`. A checkpoint or a config file naming it is data and is never enough.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from siamkit.errors import ConfigError
from siamkit.registry import check_spec, split_spec

TRUST_ENV = "SIAMKIT_TRUST_BACKBONE"
# arguments that would load weights from a file or the network; starting weights are model.init's job
WEIGHT_ARGS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "weights")
_trusted: set[str] = set()


def trust_backbone(spec: str) -> None:
    """Allow this process to import the module of the ``module:factory`` backbone ``spec``."""
    _trusted.add(spec)


def trusted(spec: str) -> bool:
    env = {s.strip() for s in os.environ.get(TRUST_ENV, "").split(",") if s.strip()}
    return spec in _trusted or spec in env


@dataclass(frozen=True)
class Built:
    """A library model ready to be a backbone: ``(B, 3, H, W) -> (B, feature_dim)``."""

    module: nn.Module
    feature_dim: int
    classifier: tuple[str, ...]  # state-dict prefixes of the classifier it no longer has
    library: str  # "siamkit", "timm", "torchvision" or "module"
    small_stem: bool
    proj_layers: int  # the projector depth that goes with it (GSG appendix C: 2 after a small stem, else 3)


def build_external(spec: str, args: dict[str, Any] | None, small_stem: bool | None) -> Built:
    """Build the backbone ``spec`` names with the keyword arguments ``args``."""
    check_spec(spec)
    args = dict(args or {})
    bad = sorted(k for k in args if k in WEIGHT_ARGS)
    if bad:
        raise ConfigError(
            f"model.backbone_args: {', '.join(bad)} would load weights inside the library; "
            "start from a weights file with model.init=FILE instead"
        )
    source, name = split_spec(spec)
    build = {"timm": _timm, "torchvision": _torchvision}.get(source, _factory)
    return build(source, name, args, bool(small_stem))


def _library(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(
            f"--backbone {name}:...: {name} is not installed ({e}); install it with pip install 'siamkit[{name}]'"
        ) from None


def _timm(source: str, name: str, args: dict, small_stem: bool) -> Built:
    timm = _library("timm")
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:4]}*")[:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ConfigError(f"model.backbone=timm:{name}: timm has no model {name!r}{hint}")
    try:
        module = timm.create_model(name, pretrained=False, num_classes=0, **args)
    except TypeError as e:
        raise ConfigError(f"model.backbone_args {args}: timm:{name} does not take them ({e})") from None
    classifier = module.pretrained_cfg.get("classifier") or "fc"
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    if small_stem:
        _small_stem(module, f"timm:{name}")
    return Built(module, int(module.num_features), classifier, "timm", small_stem, 2 if small_stem else 3)


def _torchvision(source: str, name: str, args: dict, small_stem: bool) -> Built:
    tv = _library("torchvision")
    names = tv.models.list_models(module=tv.models)
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"model.backbone=torchvision:{name}: torchvision has no classification model {name!r}{hint}")
    try:
        module = tv.models.get_model(name, weights=None, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model.backbone_args {args}: torchvision:{name} does not take them ({e})") from None
    path, dim = _drop_classifier(module, args.get("num_classes", 1000))
    if small_stem:
        _small_stem(module, f"torchvision:{name}")
    return Built(module, dim, (path,), "torchvision", small_stem, 2 if small_stem else 3)


def _factory(source: str, name: str, args: dict, small_stem: bool) -> Built:
    spec = f"{source}:{name}"
    if not trusted(spec):
        raise ConfigError(
            f"model.backbone={spec!r} imports and runs code from {source}; siamkit imports it only when you name "
            f"it yourself: --backbone {spec} or --trust-backbone {spec} on the command line, "
            f"{TRUST_ENV}={spec} in the environment, or siamkit.models.trust_backbone({spec!r}) in Python. "
            "A checkpoint or config file naming it is not enough."
        )
    try:
        factory = getattr(importlib.import_module(source), name)
    except ImportError as e:
        raise ConfigError(f"model.backbone={spec!r}: cannot import {source} ({e})") from None
    except AttributeError:
        raise ConfigError(f"model.backbone={spec!r}: {source} has no {name!r}") from None
    try:
        module = factory(**args)
    except TypeError as e:
        raise ConfigError(f"model.backbone_args {args}: {spec} failed with them ({e})") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model.backbone={spec!r}: {name}() returned {type(module).__name__}, not an nn.Module")
    if small_stem:
        _small_stem(module, spec)
    return Built(module, probe_feature_dim(module, spec), (), "module", small_stem, 2 if small_stem else 3)


def _drop_classifier(module: nn.Module, num_classes: int) -> tuple[str, int]:
    """Replace the last ``nn.Linear`` with ``num_classes`` outputs (torchvision's classifier: ``fc``,
    ``classifier.1``, ``heads.head``, ...) by the identity; its path and input size."""
    found = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not found:
        raise ConfigError(f"{type(module).__name__}: no classifier layer with {num_classes} outputs to remove")
    path, linear = found[-1]
    parent = module.get_submodule(path.rpartition(".")[0]) if "." in path else module
    leaf = path.rpartition(".")[2]
    if isinstance(parent, nn.Sequential):
        parent[int(leaf)] = nn.Identity()
    else:
        setattr(parent, leaf, nn.Identity())
    return path, linear.in_features


def _small_stem(module: nn.Module, what: str) -> None:
    """The CIFAR stem (GSG appendix C.2): ``conv1`` becomes 3x3 stride 1, ``maxpool`` the identity."""
    conv = getattr(module, "conv1", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(getattr(module, "maxpool", None), nn.Module):
        raise ConfigError(
            f"model.small_stem: {what} has no ResNet-style stem (conv1 + maxpool) to replace; leave it unset, "
            "or give the library's own arguments in model.backbone_args (a ViT: {img_size: 32, patch_size: 4})"
        )
    module.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)
    module.maxpool = nn.Identity()


def probe_feature_dim(module: nn.Module, what: str, sizes=(32, 64, 224)) -> int:
    """The feature dimension of ``module``, from one forward pass of a small batch (eval mode)."""
    was_training = module.training
    module.eval()
    errors = []
    try:
        for size in sizes:
            try:
                with torch.no_grad():
                    out = module(torch.zeros(2, 3, size, size))
            except Exception as e:  # the module rejects this input size; try the next
                errors.append(f"{size}px: {type(e).__name__}: {e}")
                continue
            if not isinstance(out, torch.Tensor) or out.ndim != 2:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ConfigError(
                    f"model.backbone={what!r} returns {shape} for images (2, 3, {size}, {size}); a backbone "
                    "must return pooled features (B, D): end it with nn.AdaptiveAvgPool2d(1) and nn.Flatten()"
                )
            return int(out.shape[1])
    finally:
        module.train(was_training)
    raise ConfigError(f"model.backbone={what!r} fails on every probe image size: {'; '.join(errors)}")
