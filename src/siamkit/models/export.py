"""A trained backbone's weights in another library's layout."""

from __future__ import annotations

from torch import Tensor

from siamkit.config import ModelConfig
from siamkit.errors import ConfigError
from siamkit.models.backbones import get_backbone

TORCHVISION_WIDTH = 64  # torchvision's ResNets have 64 channels in the first stage


def export_backbone(model_cfg: ModelConfig, state_dict: dict[str, Tensor], fmt: str) -> tuple[dict, list[str]]:
    """The backbone ``state_dict`` in ``fmt`` (``torchvision``) and notes on how to load it."""
    if fmt != "torchvision":
        raise ConfigError(f"unknown export format {fmt!r}; choose torchvision or state_dict")
    entry = get_backbone(model_cfg.backbone)
    width = model_cfg.width if model_cfg.width is not None else entry.default_width
    if width != TORCHVISION_WIDTH:
        raise ConfigError(
            f"torchvision's ResNets have width {TORCHVISION_WIDTH}; this backbone has width {width}. "
            "Use --format state_dict."
        )
    if entry.torchvision is None:
        raise ConfigError(f"backbone {entry.name!r} has no torchvision counterpart; use --format state_dict")
    notes = []
    if entry.small_stem:
        notes.append(
            "small-image stem: before loading, set model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and "
            "model.maxpool = nn.Identity()"
        )
    notes.append(
        f"load with: model = torchvision.models.{entry.torchvision}(); model.fc = torch.nn.Identity(); "
        "model.load_state_dict(torch.load(PATH))"
    )
    return dict(state_dict), notes
