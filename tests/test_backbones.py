"""Backbones from elsewhere (package.module:factory here; timm and torchvision in tests/extras),
starting weights (model.init), export, and the evaluations with few labels."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backbone_contract import TINY, run_contract
from siamkit import errors
from siamkit.cli import main
from siamkit.config import ModelConfig, build_config
from siamkit.evaluate.encoders import parse_random_spec, random_encoder, random_folder_name
from siamkit.methods import METHODS
from siamkit.models import SiameseNet, build_backbone
from siamkit.models import external as ext
from siamkit.models.init import load_init
from siamkit.runs import load_checkpoint
from siamkit.splits import balanced_fraction
from tiny_backbones import convnet, stemnet

HERE = Path(__file__).parent
CONV = "tiny_backbones:convnet"


@pytest.fixture(autouse=True)
def _nothing_trusted(monkeypatch):
    monkeypatch.setattr(ext, "_trusted", set())
    monkeypatch.delenv(ext.TRUST_ENV, raising=False)


def test_factory_backbone_is_imported_only_when_named():
    cfg = ModelConfig(backbone=CONV, backbone_args={"width": 4})  # a config naming it is data: no import
    with pytest.raises(errors.ConfigError, match=r"--trust-backbone tiny_backbones:convnet"):
        SiameseNet(cfg)
    ext.trust_backbone(CONV)
    net = SiameseNet(cfg)
    assert net.feature_dim == 8  # found by a forward pass: 2 * width
    assert net.projector[0].in_features == 8 and len(net.projector) == 3 * 2 + 2  # ImageNet-style: 3 layers


def test_trust_from_the_environment(monkeypatch):
    monkeypatch.setenv(ext.TRUST_ENV, f"other:thing, {CONV}")
    assert build_backbone(CONV, args={"width": 2})(torch.rand(2, 3, 16, 16)).shape == (2, 4)


@pytest.mark.parametrize(
    ("spec", "args", "message"),
    [
        ("tiny_backbones:convnet", {"pool": False}, "AdaptiveAvgPool2d"),  # feature maps, not features
        ("tiny_backbones:not_a_module", None, "not an nn.Module"),
        ("tiny_backbones:missing", None, "has no 'missing'"),
        ("no_such_module_xyz:f", None, "cannot import no_such_module_xyz"),
        ("tiny_backbones:convnet", {"depth": 3}, "unexpected keyword"),
    ],
)
def test_factory_backbone_errors_say_what_is_wrong(spec, args, message):
    ext.trust_backbone(spec)
    with pytest.raises(errors.ConfigError, match=message):
        build_backbone(spec, args=args)


def test_backbone_spec_syntax_and_library_arguments_are_checked_before_anything_is_built():
    for bad in ("timm:", ":x", "my-pkg:f", "pkg.mod:not valid"):
        with pytest.raises(errors.ConfigError, match=r"package.module:factory"):
            ModelConfig(backbone=bad)
    with pytest.raises(errors.ConfigError, match=r"model.width applies to siamkit's own"):
        ModelConfig(backbone="timm:resnet18", width=32)
    with pytest.raises(errors.ConfigError, match=r"model.init=FILE instead"):
        build_backbone("timm:resnet18", args={"pretrained": True})
    with pytest.raises(errors.ConfigError, match=r"resnet18 has an ImageNet stem"):
        build_backbone("resnet18", small_stem=True)
    with pytest.raises(errors.ConfigError, match=r"not 'resnet10_cifar'"):
        build_backbone("resnet10_cifar", args={"width": 3})
    cfg = build_config(
        {"data.dataset": "digits", "model.backbone": CONV, "model.backbone_args": "{width: 4, pool: true}"}
    )
    assert cfg.model.backbone_args == {"width": 4, "pool": True}
    with pytest.raises(errors.ConfigError, match=r"expected a mapping"):
        build_config({"data.dataset": "digits", "model.backbone_args": "4"})


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    monkeypatch.setitem(sys.modules, "torchvision", None)
    for lib in ("timm", "torchvision"):
        with pytest.raises(errors.ConfigError, match=rf"pip install 'siamkit\[{lib}\]'"):
            build_backbone(f"{lib}:resnet18")


def test_small_stem_replaces_a_resnet_style_stem():
    ext.trust_backbone("tiny_backbones:stemnet")
    big = build_backbone("tiny_backbones:stemnet")
    small = build_backbone("tiny_backbones:stemnet", small_stem=True)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity) and isinstance(big.maxpool, torch.nn.MaxPool2d)
    assert SiameseNet(ModelConfig(backbone="tiny_backbones:stemnet", small_stem=True)).projector[-1].num_features
    assert len(SiameseNet(ModelConfig(backbone="tiny_backbones:stemnet", small_stem=True)).projector) == 5  # 2 layers
    ext.trust_backbone(CONV)
    with pytest.raises(errors.ConfigError, match=r"no ResNet-style stem"):
        build_backbone(CONV, small_stem=True)


def test_random_specs_take_library_backbones():
    assert parse_random_spec("random:timm:resnet18") == ("timm:resnet18", None)
    assert parse_random_spec("random:resnet10_cifar:4") == ("resnet10_cifar", 4)
    assert parse_random_spec(f"random:{CONV}") == (CONV, None)
    with pytest.raises(errors.CheckpointError, match=r"must be an integer"):
        parse_random_spec("random:resnet10_cifar:x")


def test_random_encoder_is_built_with_the_configs_arguments():
    ext.trust_backbone(CONV)
    x = torch.rand(2, 3, 16, 16)
    assert random_encoder(CONV, args={"width": 3}).backbone(x).shape == (2, 6)  # 2 * width, not the default 16
    assert random_encoder(CONV).backbone(x).shape == (2, 16)
    a, b = random_encoder(CONV, args={"width": 3}, seed=1), random_encoder(CONV, args={"width": 3}, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.backbone.parameters(), b.backbone.parameters(), strict=True))
    # the records of differently built baselines never share a folder; the plain name is unchanged
    assert random_folder_name("resnet10_cifar", 4) == "random-resnet10_cifar-w4"
    names = {
        random_folder_name(CONV),
        random_folder_name(CONV, args={"width": 3}),
        random_folder_name(CONV, args={"width": 4}),
        random_folder_name(CONV, small_stem=False),
    }
    assert len(names) == 4 and all(n.startswith("random-tiny_backbones-convnet") for n in names)
    assert random_folder_name(CONV, args={"width": 3, "pool": True}) == random_folder_name(
        CONV, args={"pool": True, "width": 3}
    )


@pytest.mark.parametrize("method", sorted(METHODS.names()))
def test_every_method_trains_a_factory_backbone(tmp_path, method):
    sets = [a for s in [*TINY, "data.train_subset=64", "model.backbone_args={width: 4}"] for a in ("--set", s)]
    out = tmp_path / method
    assert main(["pretrain", "--method", method, "--backbone", CONV, "--epochs", "1", "--out", str(out),
                 "--quiet", *sets]) == 0  # fmt: skip
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["config"]["model"]["backbone"] == CONV and "backbone.0.weight" in ck["model"]


def test_factory_backbone_contract(tmp_path):
    """Pretrain, resume, export both ways, reload into the factory's own module, init, kNN."""
    found = run_contract(tmp_path, ["--backbone", CONV, "--set", "model.backbone_args={width: 4}"],
                         lambda: convnet(width=4))  # fmt: skip
    assert found["feature_dim"] == 8 and found["backbone"] == found["safetensors"] == 12


def test_a_resumed_factory_run_needs_the_backbone_named_again(tmp_path, monkeypatch):
    run = tmp_path / "run"
    sets = [a for s in [*TINY, "data.train_subset=64"] for a in ("--set", s)]
    assert main(["pretrain", "--backbone", CONV, "--epochs", "1", "--out", str(run), "--quiet", *sets]) == 0
    monkeypatch.setattr(ext, "_trusted", set())  # a new process
    with pytest.raises(errors.ConfigError, match=r"not enough"):
        from siamkit.evaluate import load_model

        load_model(run)
    assert main(["pretrain", "--epochs", "2", "--out", str(run), "--resume", "--quiet", "--trust-backbone", CONV]) == 0


def test_ddp_with_a_factory_backbone_and_starting_weights(tmp_path):
    torch.save(convnet(width=4).state_dict(), tmp_path / "start.pt")
    sets = [a for s in [*TINY, "data.train_subset=64", "model.backbone_args={width: 4}",
                        f"model.init={tmp_path / 'start.pt'}"] for a in ("--set", s)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "siamkit"]
    cmd = [*ddp, "pretrain", "--backbone", CONV, "--epochs", "1", "--out", str(tmp_path / "two"), "--quiet", *sets]
    two = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr
    assert "model.init: loaded 12 of 12 backbone tensors" in two.stderr
    assert "module." not in "".join(load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"])


# ---- model.init ---------------------------------------------------------------------------------


def test_init_copies_the_file_exactly_and_drops_the_source_classifier(tmp_path):
    src = stemnet(width=4)
    state = {**src.state_dict(), "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}  # as published
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pt")  # DDP training ck
    dst = stemnet(width=4)
    report = load_init(dst, tmp_path / "w.pt", classifier=("fc",))
    assert report.loaded == report.of == 6 and report.classifier == ("fc.weight", "fc.bias")
    assert not report.missing and not report.unexpected and not report.mismatched
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_init_mismatches_are_named_and_strict_leaves_the_backbone_alone(tmp_path):
    torch.save(stemnet(width=4).state_dict(), tmp_path / "w.pt")
    dst = stemnet(width=4)
    dst.conv1 = torch.nn.Conv2d(3, 4, 3, 1, 1, bias=False)  # a small stem: conv1's shape differs
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(errors.ConfigError, match=r"conv1.weight: file \(4, 3, 7, 7\) vs backbone \(4, 3, 3, 3\)"):
        load_init(dst, tmp_path / "w.pt")
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())
    report = load_init(dst, tmp_path / "w.pt", strict=False)
    assert report.loaded == 5 and len(report.mismatched) == 1
    assert (
        torch.equal(dst.conv1.weight, before["conv1.weight"])
        and torch.equal(dst.bn1.weight, before["bn1.weight"]) is not False
    )


def test_init_takes_a_siamkit_checkpoint_and_refuses_code_and_wrong_files(tmp_path):
    ext.trust_backbone(CONV)
    net = SiameseNet(ModelConfig(backbone=CONV, backbone_args={"width": 4}))
    torch.save({"model": net.state_dict()}, tmp_path / "ck.pt")
    dst = convnet(width=4)
    assert load_init(dst, tmp_path / "ck.pt").loaded == 12
    assert torch.equal(dst[0].weight, net.backbone[0].weight)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"w": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(errors.CheckpointError, match=r"siamkit loads weights as data"):
        load_init(dst, tmp_path / "evil.pt")
    torch.save({"a": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(errors.ConfigError, match=r"nothing in .* fits this backbone"):
        load_init(dst, tmp_path / "other.pt")
    with pytest.raises(errors.ConfigError, match=r"no such file"):
        load_init(dst, tmp_path / "absent.pt")


# ---- few labels and fine-tuning ------------------------------------------------------------------


def test_balanced_fraction_by_hand_and_as_a_property():
    y = np.array([0] * 10 + [1] * 10 + [2] * 30)  # 50 images, 3 classes
    idx = balanced_fraction(y, 0.12, seed=0)  # round(0.12 * 50 / 3) = 2 per class
    assert np.bincount(y[idx]).tolist() == [2, 2, 2] and (np.diff(idx) > 0).all()
    assert balanced_fraction(y, 0.12, seed=0).tolist() == idx.tolist()
    assert balanced_fraction(y, 0.12, seed=1).tolist() != idx.tolist()
    assert np.bincount(y[balanced_fraction(y, 0.001)]).tolist() == [1, 1, 1]  # at least one per class
    assert np.bincount(y[balanced_fraction(y, 1.0)]).tolist() == [10, 10, 17]  # a class gives what it has
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(errors.ConfigError, match=r"label-fraction"):
            balanced_fraction(y, bad)
