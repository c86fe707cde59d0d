import math

import pytest
import torch

from siamkit.models import (
    BACKBONES,
    ModelConfig,
    MomentumTarget,
    SiameseNet,
    build_backbone,
    predictor,
    projector,
    tau_at,
)
from siamkit.models.resnet import BasicBlock, ResNet

TINY = ModelConfig(backbone="resnet10_cifar", width=4, proj_dim=16, proj_hidden=16, pred_hidden=8)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbones_give_their_feature_dim(name):
    info = BACKBONES[name]
    net = build_backbone(name, width=8)
    x = torch.randn(2, 3, 32, 32)
    assert net(x).shape == (2, info.feature_dim(8)) == (2, net.feature_dim)


def test_torchvision_parameter_counts_and_names():
    # torchvision's resnet18 has 11,689,512 parameters and resnet50 25,557,032, fc included
    # (512*1000+1000 and 2048*1000+1000): the trunks must match to the parameter.
    r18, r50 = build_backbone("resnet18"), build_backbone("resnet50")
    assert sum(p.numel() for p in r18.parameters()) == 11_689_512 - 513_000
    assert sum(p.numel() for p in r50.parameters()) == 25_557_032 - 2_049_000
    keys = set(r18.state_dict())
    for key in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "layer4.1.bn2.bias",
    ):
        assert key in keys
    assert "layer1.2.conv3.weight" in r50.state_dict()


def test_wide_last_stage_changes_only_the_last_stage():
    # resnet10_cifar_wide4 at width 16: stages 16/32/64 as resnet10_cifar, then 256 channels (16 x 16)
    narrow, wide = build_backbone("resnet10_cifar", width=16), build_backbone("resnet10_cifar_wide4")
    assert wide.feature_dim == 256 and narrow.feature_dim == 128
    shapes = {k: v.shape for k, v in narrow.state_dict().items()}
    for key, value in wide.state_dict().items():
        if key.startswith("layer4."):
            assert value.shape != shapes[key] or value.dim() == 0, key
        else:
            assert value.shape == shapes[key], key
    assert wide.layer4[0].conv1.weight.shape == (256, 64, 3, 3)
    assert wide(torch.randn(2, 3, 24, 24)).shape == (2, 256)
    with pytest.raises(ValueError, match="last_stage"):
        ResNet(BasicBlock, (1, 1, 1, 1), "cifar", 16, last_stage=0)


def test_cifar_stem_keeps_resolution():
    net = build_backbone("resnet18_cifar", width=4)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert net.feature_dim == 32
    assert set(build_backbone("resnet18_cifar").state_dict()) == set(build_backbone("resnet18").state_dict())


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="resnet18_cifar, resnet10_cifar"):
        ModelConfig(backbone="vit")


def test_heads_match_the_paper_layouts():
    cifar = projector(512, 2048, 2048, layers=2)
    kinds = [type(m).__name__ for m in cifar]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    imnet = projector(2048, layers=3)
    assert [type(m).__name__ for m in imnet] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + [
        "Linear",
        "BatchNorm1d",
    ]
    h = predictor()
    assert [type(m).__name__ for m in h] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert (h[0].in_features, h[0].out_features, h[3].out_features) == (2048, 512, 2048)


def test_projector_depth_follows_the_stem():
    assert len(SiameseNet(ModelConfig(backbone="resnet10_cifar", width=4)).projector) == 5
    assert len(SiameseNet(ModelConfig(backbone="resnet18", width=4)).projector) == 8


def test_per_view_batchnorm_is_one_forward_per_view():
    net = SiameseNet(TINY).train()
    views = torch.randn(3, 6, 3, 16, 16)
    z, p = net(views)
    assert z.shape == p.shape == (3, 6, 16)
    torch.testing.assert_close(z[1], net.encode(views[1]))
    joint = SiameseNet(ModelConfig(**{**TINY.__dict__, "bn": "joint"}))
    joint.load_state_dict(net.state_dict())
    zj, _ = joint(views)
    torch.testing.assert_close(zj.flatten(0, 1), joint.encode(views.flatten(0, 1)))
    assert not torch.allclose(zj, z, atol=1e-4)  # the option changes results: that is why it is named


def test_predictor_free_means_p_equals_z():
    net = SiameseNet(TINY, predictor=False)
    z, p = net(torch.randn(2, 4, 3, 16, 16))
    assert p is z or torch.equal(p, z)


def test_momentum_update_is_the_ema_and_never_needs_grad():
    online = SiameseNet(TINY)
    target = MomentumTarget(online)
    assert all(not q.requires_grad for q in target.parameters())
    before = [q.clone() for q in target.parameters()]
    with torch.no_grad():
        for q in online.parameters():
            q.add_(1.0)
    online_params = [*online.backbone.parameters(), *online.projector.parameters()]
    target.update(online, tau=0.75)
    for old, new, theta in zip(before, target.parameters(), online_params, strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * theta)
    target.update(online, tau=0.0)  # tau = 0 copies the online network
    for new, theta in zip(target.parameters(), online_params, strict=True):
        torch.testing.assert_close(new, theta)
    with pytest.raises(ValueError, match=r"tau must lie in \[0, 1\]"):
        target.update(online, tau=1.5)


def test_momentum_update_leaves_buffers_alone():
    online = SiameseNet(TINY)
    target = MomentumTarget(online)
    online(torch.randn(2, 4, 3, 16, 16))  # moves the online running statistics
    buffers = [b.clone() for b in target.buffers()]
    target.update(online, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(buffers, target.buffers(), strict=True))


def test_tau_schedules():
    assert tau_at("constant", 0.99, 50, 100) == 0.99
    assert tau_at("cosine", 0.996, 0, 100) == pytest.approx(0.996)
    assert tau_at("cosine", 0.996, 50, 100) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 2) + 1) / 2)
    assert tau_at("cosine", 0.996, 100, 100) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="constant, cosine"):
        tau_at("linear", 0.9, 0, 1)
