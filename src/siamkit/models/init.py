"""Starting weights for a backbone (``model.init=FILE``), read as data and matched key by key.

The file may be siamkit's export (a plain backbone state dict, ``.pt`` or ``.safetensors``), a
siamkit checkpoint (its ``backbone.*`` weights), torchvision's or timm's published weights, or a
training checkpoint that wraps a state dict in ``state_dict`` / ``model`` (``module.`` prefixes of
DDP are removed). It is loaded with ``weights_only=True``: tensors and plain containers, never
code. The classifier of the library the weights came from (``fc``, ``head``, ...) is dropped and
said so. Any other key the backbone lacks, key it needs that the file lacks, or shape that
differs is an error listing them by name, unless ``strict=False``: then what matches is loaded and
the rest is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from siamkit.errors import CheckpointError, ConfigError

SHOWN = 8  # keys named per kind of mismatch in a message


@dataclass(frozen=True)
class InitReport:
    """What ``model.init`` loaded: counts, and the keys left out by name."""

    path: str
    loaded: int
    of: int  # tensors the backbone has
    classifier: tuple[str, ...]  # dropped: the source's classifier
    missing: tuple[str, ...]  # the backbone has them, the file does not (left at their initial values)
    unexpected: tuple[str, ...]  # the file has them, the backbone does not
    mismatched: tuple[str, ...]  # "key: file (64, 3, 7, 7) vs backbone (64, 3, 3, 3)"

    def summary(self) -> str:
        parts = [f"model.init: loaded {self.loaded} of {self.of} backbone tensors from {self.path}"]
        if self.classifier:
            parts.append(f"dropped the classifier ({_names(self.classifier)})")
        for what, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("shape", self.mismatched)):
            if keys:
                parts.append(f"{len(keys)} {what}: {_names(keys)}")
        return "; ".join(parts)


def _names(keys) -> str:
    keys = list(keys)
    return ", ".join(keys[:SHOWN]) + (f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else "")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a weights file, unwrapped to one flat ``name -> tensor`` mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.init={str(path)!r}: no such file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConfigError(f"{path}: reading .safetensors needs pip install 'siamkit[safetensors]'") from None
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for damaged files
            raise CheckpointError(f"{path} cannot be read as safetensors ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged or unsafe file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it holds Python objects other than tensors, numbers, strings and containers"
        raise CheckpointError(f"{path} cannot be read as weights ({reason}); siamkit loads weights as data") from None
    return _unwrap(state, path)


def _unwrap(state, path: Path) -> dict[str, Tensor]:
    for key in ("state_dict", "model"):  # training checkpoints (siamkit's, Lightning's, timm's)
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    if any(k.startswith("backbone.") for k in state):  # a whole siamkit network: keep its backbone
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    if all(k.startswith("module.") for k in state):  # saved from a DDP wrapper
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_init(
    backbone: nn.Module, path: str | Path, strict: bool = True, classifier: tuple[str, ...] = ("fc",)
) -> InitReport:
    """Copy the weights of ``path`` into ``backbone``; ``classifier``: prefixes of the source
    library's classifier, dropped without complaint. Raises :class:`ConfigError` naming the keys
    when ``strict`` and anything else does not match (``backbone`` is then unchanged)."""
    source = read_state_dict(path)
    own = backbone.state_dict()
    is_head = lambda k: any(k == c or k.startswith(c + ".") for c in classifier)  # noqa: E731
    dropped = tuple(k for k in source if k not in own and is_head(k))
    unexpected = tuple(k for k in source if k not in own and not is_head(k))
    missing = tuple(k for k in own if k not in source and not k.endswith("num_batches_tracked"))  # a counter
    mismatched = tuple(
        f"{k}: file {tuple(source[k].shape)} vs backbone {tuple(own[k].shape)}"
        for k in own
        if k in source and source[k].shape != own[k].shape
    )
    good = {k: v for k, v in source.items() if k in own and v.shape == own[k].shape}
    report = InitReport(str(path), len(good), len(own), dropped, missing, unexpected, mismatched)
    if all(k.endswith("num_batches_tracked") for k in good):
        raise ConfigError(f"{report.summary()}: nothing in {path} fits this backbone; is it the right file?")
    if strict and (missing or unexpected or mismatched):
        raise ConfigError(f"{report.summary()}. Load what fits with --set model.init_strict=false")
    backbone.load_state_dict(good, strict=False)
    return report
