"""Networks: backbones (a registry of ResNets), projector/predictor heads, the momentum target."""

from siamkit.models.backbones import BACKBONES, BackboneInfo, backbone_info, build_backbone
from siamkit.models.heads import predictor, projector
from siamkit.models.momentum import TAU_SCHEDULES, MomentumTarget, tau_at
from siamkit.models.resnet import ResNet
from siamkit.models.siamese import BN_MODES, ModelConfig, SiameseNet, forward_views

__all__ = [
    "BACKBONES",
    "BN_MODES",
    "TAU_SCHEDULES",
    "BackboneInfo",
    "ModelConfig",
    "MomentumTarget",
    "ResNet",
    "SiameseNet",
    "backbone_info",
    "build_backbone",
    "forward_views",
    "predictor",
    "projector",
    "tau_at",
]
