"""Networks: backbones (a registry), projector/predictor heads, the momentum target."""

from siamkit.config import BN_MODES, TAU_SCHEDULES, ModelConfig
from siamkit.models.backbones import Backbone, build_backbone, get_backbone, register_backbone
from siamkit.models.export import export_backbone
from siamkit.models.heads import predictor, projector
from siamkit.models.momentum import MomentumTarget, tau_at
from siamkit.models.resnet import ResNet
from siamkit.models.siamese import SiameseNet, forward_views
from siamkit.registry import BACKBONES

__all__ = [
    "BACKBONES",
    "BN_MODES",
    "TAU_SCHEDULES",
    "Backbone",
    "ModelConfig",
    "MomentumTarget",
    "ResNet",
    "SiameseNet",
    "build_backbone",
    "export_backbone",
    "forward_views",
    "get_backbone",
    "predictor",
    "projector",
    "register_backbone",
    "tau_at",
]
