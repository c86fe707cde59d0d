import dataclasses

import pytest
import torch

from siamkit.config import PRESETS, Config, ConfigError, build_config, parse_value
from siamkit.registry import RECIPES


def test_defaults_are_the_gsg_cifar_recipe():
    c = build_config({"data.data_root": "/data"})
    assert (c.train.batch_size, c.train.epochs, c.optim.lr, c.optim.weight_decay) == (512, 200, 0.06, 5e-4)
    assert c.optim.schedule == "constant" and c.model.backbone == "resnet18_cifar"


def test_presets_then_flags_then_set():
    c = build_config(
        {"train.epochs": 3, "optim.lr": "0.1", "method.predictor": "false", "data.data_root": "/d"},
        preset="cpu",
    )
    assert c.model.backbone == "resnet10_cifar" and c.train.precision == "auto"  # from the preset
    assert c.train.epochs == 3 and c.optim.lr == 0.1 and c.method.predictor is False
    assert c.preset == "cpu"
    assert set(PRESETS) >= {"gsg-cifar10", "gsg-imagenet", "simsiam-imagenet", "cpu", "digits"}


def test_scaled_lr_is_computed_not_written():
    c = build_config({"data.data_root": "/imagenet"}, preset="simsiam-imagenet")
    assert c.optim.lr == 0.05 and c.optim.base_lr(512) == pytest.approx(0.1)
    assert "lr" in c.to_dict()["optim"] and c.to_dict()["optim"]["lr"] == 0.05


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"optim.lrate": 1},
            r"unknown config key 'optim.lrate' \(did you mean 'optim.lr'\?\); valid keys: method.name",
        ),
        ({"train.epochs": "ten"}, r"train.epochs='ten': expected int"),
        ({"train.epochs": 0}, r"train.epochs must be > 0"),
        ({"train.precision": "fp8"}, "choose one of fp32, bf16, fp16"),
        ({"method.name": "simclr"}, "unknown method 'simclr'"),
        ({"method.name": "simsiam-gsg", "method.views": 4}, "views must be 2"),
        ({"model.backbone": "vit_b"}, "unknown backbone 'vit_b'"),
        ({"data.dataset": "cifar10"}, "needs --data-root"),
        ({"data.dataset": "mnist"}, "choose one of digits, cifar10, cifar100, imagefolder"),
        ({"method.predictor": "maybe"}, "expected bool"),
        ({"train.batch_size": 1.5}, "expected int"),
    ],
)
def test_bad_values_fail_with_the_valid_choices(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"data.dataset": "digits", **values})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'fast'; choose one of gsg-cifar10"):
        build_config({}, preset="fast")


def test_round_trip_through_a_dict():
    c = build_config({"method.name": "ensiam", "method.leave_one_out": True}, preset="digits")
    again = Config.from_dict(c.to_dict())
    assert again == c
    with pytest.raises(ConfigError, match="unknown config section"):
        Config.from_dict({**c.to_dict(), "extra": {}})


def test_parse_value_handles_optional_fields():
    assert parse_value("model.width", "none") is None
    assert parse_value("model.width", "48") == 48
    assert parse_value("train.channels_last", "on") is True


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(monkeypatch):
    from siamkit import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    assert build_config({"data.dataset": "digits", "train.precision": "auto"}).train.use_channels_last("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu") == "fp32"
    assert not build_config({"data.dataset": "digits", "train.precision": "auto"}).train.use_channels_last("cpu")
    assert precision.resolve_precision("bf16", "cpu") == "bf16"  # a typed precision is used as typed
    with precision.autocast("auto", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_crop_min_scale_narrows_only_the_crop_area():
    plain = build_config({}, preset="digits").data
    assert plain.crop_min_scale is None and plain.augmentation() is RECIPES["digits"]
    data = build_config({"data.crop_min_scale": "0.2"}, preset="digits").data
    aug = data.augmentation()
    assert aug.crop_scale == (0.2, 1.0)
    assert dataclasses.replace(aug, crop_scale=RECIPES["digits"].crop_scale) == RECIPES["digits"]
    assert RECIPES["digits"].crop_scale == (0.5, 1.0)  # the registered recipe is left as it was
    for bad in (0, 1.5):
        with pytest.raises(ConfigError, match=r"data.crop_min_scale must be > 0 and <= 1, got"):
            build_config({"data.crop_min_scale": bad}, preset="digits")


def test_local_crops_take_the_training_recipe_with_their_own_scale_and_size():
    data = build_config(
        {"data.local_crops": 4, "data.data_root": "d"}, preset="speedrun"
    ).data  # training crops of 24 px
    assert (data.local_crop_size(), data.local_scale()) == (12, (0.05, 0.4))  # half the size, DINO's range
    aug = data.local_augmentation()
    assert aug.crop_scale == (0.05, 0.4)
    assert dataclasses.replace(aug, crop_scale=data.augmentation().crop_scale) == data.augmentation()
    given = {"data.local_crops": 2, "data.local_size": 16, "data.local_min_scale": 0.1, "data.local_max_scale": 0.3}
    data = build_config({**given, "data.data_root": "d"}, preset="speedrun").data
    assert (data.local_crop_size(), data.local_scale()) == (16, (0.1, 0.3))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data.local_size": 12}, r"data.local_size applies to multi-crop's small crops; give data.local_crops"),
        ({"data.local_crops": 2, "data.local_min_scale": 0.4}, r"local_min_scale=0.4 must be below .*=0.4"),
        ({"data.local_crops": 2, "data.local_size": 20}, r"local_size=20 exceeds the training crop size 16"),
        ({"data.local_crops": -1}, r"data.local_crops must be >= 0, got -1"),
        ({"data.local_crops": 2, "method.name": "byol-gsg"}, r"method byol-gsg \(GSG\) .* takes no small crops"),
    ],
)
def test_bad_local_crops_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(values, preset="digits")


def test_jitter_strength_scales_only_the_colour_jitter_ranges():
    base = build_config({"data.data_root": "d"}, preset="speedrun").data.augmentation()
    half = build_config({"data.data_root": "d", "data.jitter_strength": 0.5}, preset="speedrun").data.augmentation()
    assert base.jitter == (0.4, 0.4, 0.4, 0.1) and half.jitter == pytest.approx((0.2, 0.2, 0.2, 0.05))
    assert dataclasses.replace(half, jitter=base.jitter) == base  # crops from 0.2 and the rest kept
    assert build_config({"data.jitter_strength": 0}, preset="digits").data.augmentation().jitter == (0, 0, 0, 0)
    with pytest.raises(ConfigError, match=r"jitter_strength=6.0 makes the hue jitter 0.6 turns; it can be at most"):
        build_config({"data.jitter_strength": 6.0}, preset="digits")
    with pytest.raises(ConfigError, match=r"data.jitter_strength must be >= 0, got -1"):
        build_config({"data.jitter_strength": -1}, preset="digits")
