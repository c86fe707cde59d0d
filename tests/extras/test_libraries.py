"""timm and torchvision backbones end to end (``make test-extras``, its own venv): pretrain,
resume, export, reload into the library's own model, model.init from the library's weights, kNN."""

import pytest
import timm
import torch
import torchvision

from backbone_contract import run_contract
from siamkit.config import ModelConfig
from siamkit.models import SiameseNet, build_backbone
from siamkit.models.init import load_init


def _small_stem(m):
    m.conv1 = torch.nn.Conv2d(3, m.conv1.out_channels, 3, 1, 1, bias=False)
    m.maxpool = torch.nn.Identity()
    return m


def _tv_resnet18():
    m = torchvision.models.resnet18()
    m.fc = torch.nn.Identity()
    return _small_stem(m)


VIT = {"img_size": 32, "patch_size": 8, "depth": 2}  # a 2-block ViT-Tiny on 32 px: 16 patches

CASES = {
    "timm-resnet18": (["--backbone", "timm:resnet18", "--set", "model.small_stem=true"],
                      lambda: _small_stem(timm.create_model("resnet18", num_classes=0)), 512),
    "timm-vit": (["--backbone", "timm:vit_tiny_patch16_224", "--set",
                  "model.backbone_args={img_size: 32, patch_size: 8, depth: 2}"],
                 lambda: timm.create_model("vit_tiny_patch16_224", num_classes=0, **VIT), 192),
    "torchvision-resnet18": (["--backbone", "torchvision:resnet18", "--set", "model.small_stem=true"],
                             _tv_resnet18, 512),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_library_backbone_contract(tmp_path, case):
    flags, fresh, dim = CASES[case]
    size = 32 if "vit" in case else 16  # a ResNet-18 at 16 px: the same code paths, a quarter of the time
    method = {"timm-vit": "byol", "timm-resnet18": "byol-gsg"}.get(case, "simsiam")  # a momentum target, GSG
    found = run_contract(tmp_path, flags, fresh, method=method, size=size)
    assert found["feature_dim"] == dim
    assert found["backbone"] == found["safetensors"] == len(fresh().state_dict())


def test_torchvision_weights_start_siamkit_and_library_backbones(tmp_path):
    """Published-style weights (with the classifier) load into torchvision:resnet18 and into
    siamkit's own resnet18 (torchvision's names): the same features as torchvision's model."""
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    ref.fc = torch.nn.Identity()
    ref.eval()
    x = torch.rand(2, 3, 64, 64)
    for name in ("torchvision:resnet18", "resnet18"):
        net = SiameseNet(ModelConfig(backbone=name))
        report = load_init(net.backbone, tmp_path / "resnet18.pth", classifier=net.parts.classifier)
        assert report.classifier == ("fc.weight", "fc.bias") and report.loaded == report.of
        net.backbone.eval()
        with torch.no_grad():
            torch.testing.assert_close(net.backbone(x), ref(x))


def test_timm_weights_with_a_small_stem_need_init_strict_false(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "timm.pth")
    net = SiameseNet(ModelConfig(backbone="timm:resnet18", small_stem=True))
    with pytest.raises(ValueError, match=r"conv1.weight: file \(64, 3, 7, 7\) vs backbone \(64, 3, 3, 3\)"):
        load_init(net.backbone, tmp_path / "timm.pth", classifier=net.parts.classifier)
    report = load_init(net.backbone, tmp_path / "timm.pth", strict=False, classifier=net.parts.classifier)
    assert report.loaded == report.of - 1 and report.classifier == ("fc.weight", "fc.bias")


def test_unknown_library_models_are_named():
    for spec, message in (("timm:resnet19x", "timm has no model"), ("torchvision:resnet19", "did you mean")):
        with pytest.raises(ValueError, match=message):
            build_backbone(spec)
    with pytest.raises(ValueError, match="no ResNet-style stem"):
        build_backbone("timm:vit_tiny_patch16_224", small_stem=True)
