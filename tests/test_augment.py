import math
import random

import pytest
import torch
from kornia.enhance import adjust_hue

from reference import color_jitter_loop, crop_params_loop
from siamkit.data.augment import (
    RECIPES,
    MultiViewAugment,
    _color_jitter,
    center_normalize,
    crop_resize,
    sample_crop_boxes,
)


def _images(n=8, s=32):
    return torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8)


# ---- by hand -----------------------------------------------------------------------------------


def test_crop_resize_by_hand():
    x = _images().float() / 255
    n = len(x)
    whole = torch.tensor([0.0, 0.0, 32.0, 32.0]).expand(n, 4)
    no, yes = torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)
    torch.testing.assert_close(crop_resize(x, whole, no, 32), x)  # identity
    torch.testing.assert_close(crop_resize(x, whole, yes, 32), x.flip(-1))  # mirror
    box = torch.tensor([3.0, 5.0, 16.0, 16.0]).expand(n, 4)
    torch.testing.assert_close(crop_resize(x, box, no, 16), x[:, :, 3:19, 5:21])  # a crop at its own size
    # a 2x2 crop blown up to 4x4 equals bilinear interpolation of that crop
    up = torch.nn.functional.interpolate(x[:, :, 10:12, 7:9], size=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(crop_resize(x, torch.tensor([10.0, 7.0, 2.0, 2.0]).expand(n, 4), no, 4), up)


def test_grayscale_and_normalisation_by_hand():
    aug = MultiViewAugment(RECIPES["cifar"])
    x = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    x[:, 1] = 0
    p = aug.sample(1, 1, 32)
    p.box[:] = torch.tensor([0.0, 0.0, 32.0, 32.0])
    p.jitter[:] = False
    p.gray[:] = True
    out = aug.apply(x, p)[0, 0]
    luma = 0.299 + 0.114  # R and B at 1, G at 0
    expected = (luma - torch.tensor(RECIPES["cifar"].mean)) / torch.tensor(RECIPES["cifar"].std)
    torch.testing.assert_close(out[:, 0, 0], expected)


# ---- vectorised against loops --------------------------------------------------------------------


def test_crop_boxes_follow_torchvision_distribution():
    n = 20000
    boxes = sample_crop_boxes((n,), 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    rng = random.Random(0)
    ref = torch.tensor([crop_params_loop(32, 32, (0.08, 1.0), (3 / 4, 4 / 3), rng) for _ in range(n)]).float()
    for col in range(4):  # top, left, h, w: same means and spreads within sampling error
        a, b = boxes[:, col], ref[:, col]
        assert abs(a.mean() - b.mean()) < 4 * math.hypot(a.std(), b.std()) / math.sqrt(n)
        assert abs(a.std() - b.std()) / b.std() < 0.03
    area = boxes[:, 2] * boxes[:, 3] / 1024
    assert area.min() >= 0.08 * 0.8 and area.max() <= 1.0  # rounding moves the area a little
    assert (boxes[:, 0] + boxes[:, 2] <= 32).all() and (boxes[:, 1] + boxes[:, 3] <= 32).all()


def test_crop_fallback_is_the_centred_clamped_box():
    # a scale range no box fits forces the fallback for every sample
    boxes = sample_crop_boxes((5,), 10, 40, (2.0, 3.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert boxes.tolist() == [list(map(float, crop_params_loop(10, 40, (2.0, 3.0), (3 / 4, 4 / 3), random)))] * 5


def test_color_jitter_matches_the_per_image_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    aug = MultiViewAugment(RECIPES["cifar"])
    p = aug.sample(64, 1, 8, g)
    got = _color_jitter(x, p.jitter[0], p.factors[0], p.order[0])
    for i in range(64):
        ref = color_jitter_loop(x[i], p.factors[0, i], p.order[0, i].tolist(), adjust_hue) if p.jitter[0, i] else x[i]
        torch.testing.assert_close(got[i], ref, atol=1e-5, rtol=1e-5)
    assert len({tuple(o) for o in p.order[0].tolist()}) > 10  # orders really vary per sample


# ---- properties ----------------------------------------------------------------------------------


def test_parameters_are_drawn_per_sample_not_per_batch():
    aug = MultiViewAugment(RECIPES["cifar"])
    p = aug.sample(256, 2, 32, torch.Generator().manual_seed(1))
    assert p.box.shape == (2, 256, 4)
    assert len({tuple(b) for b in p.box.flatten(0, 1).tolist()}) > 400
    assert 0.4 < p.flip.float().mean() < 0.6
    assert 0.7 < p.jitter.float().mean() < 0.9
    assert 0.1 < p.gray.float().mean() < 0.3
    assert not p.blur.any()  # the CIFAR recipe has no blur
    # one image repeated: every view of every copy comes out different
    views = aug.apply(_images(1).expand(256, -1, -1, -1), p)
    flat = views.flatten(2)
    assert torch.cdist(flat[0], flat[0]).fill_diagonal_(1.0).min() > 0


def test_views_layout_and_range():
    aug = MultiViewAugment("imagenet", size=48)
    views = aug(_images(4, 56), views=3, g=torch.Generator().manual_seed(0))
    assert views.shape == (3, 4, 3, 48, 48) and views.dtype == torch.float32
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in views)
    lo = (0 - torch.tensor(RECIPES["imagenet"].mean)) / torch.tensor(RECIPES["imagenet"].std)
    hi = (1 - torch.tensor(RECIPES["imagenet"].mean)) / torch.tensor(RECIPES["imagenet"].std)
    per_channel = views.transpose(0, 2).flatten(1)
    assert (per_channel.min(1).values >= lo - 1e-5).all() and (per_channel.max(1).values <= hi + 1e-5).all()


def test_rows_of_a_global_batch_give_the_single_process_views():
    aug = MultiViewAugment(RECIPES["cifar"])
    x = _images(12)
    p = aug.sample(12, 2, 32, torch.Generator().manual_seed(3))
    full = aug.apply(x, p)
    for start, stop in ((0, 6), (6, 12)):  # two ranks
        torch.testing.assert_close(aug.apply(x[start:stop], p.rows(start, stop)), full[:, start:stop])


def test_center_normalize_crops_the_middle():
    x = _images(2, 40)
    out = center_normalize(x, "cifar", 32)
    r = RECIPES["cifar"]
    ref = (x[:, :, 4:36, 4:36].float() / 255 - torch.tensor(r.mean).view(1, 3, 1, 1)) / torch.tensor(r.std).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="cannot be centre-cropped"):
        center_normalize(x, "cifar", 64)


def test_apply_rejects_mismatched_inputs():
    aug = MultiViewAugment("cifar")
    p = aug.sample(4, 2, 32)
    with pytest.raises(ValueError, match="parameters for 4 images, got 3"):
        aug.apply(_images(3), p)
    with pytest.raises(ValueError, match="square RGB"):
        aug.apply(torch.zeros(4, 1, 32, 32, dtype=torch.uint8), p)


def test_hue_shift_matches_kornia_including_edge_cases():
    from siamkit.data.augment import _hue

    x = torch.rand(64, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    x[0] = 0.0  # black
    x[1] = 0.5  # gray: no hue
    x[2, 0], x[2, 1], x[2, 2] = 1.0, 0.0, 0.0  # pure red, on the wrap-around of the hue circle
    f = torch.linspace(-0.5, 0.5, 64)
    torch.testing.assert_close(_hue(x, f.view(-1, 1, 1, 1)), adjust_hue(x, f * 2 * math.pi), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_hue(x, torch.zeros(64, 1, 1, 1)), x, atol=1e-6, rtol=0)  # no shift: identity


def test_hue_is_finite_on_nearly_gray_pixels():
    """max - min of a few ulps (seen in training: 0.28996655, 0.28996652, 0.28996652) must not
    vanish in the gray guard and divide 0 by 0."""
    from siamkit.data.augment import _hue

    x = torch.tensor([0.28996655344963074, 0.28996652364730835, 0.28996652364730835]).view(1, 3, 1, 1)
    x = torch.cat([x, x.roll(1, 1), x.roll(2, 1), 1 - x])  # the odd channel as red, green, blue; near white
    f = torch.tensor([0.05, -0.1, 0.1, 0.0]).view(-1, 1, 1, 1)
    out = _hue(x, f)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, adjust_hue(x, f * 2 * math.pi), atol=1e-6, rtol=0)


def test_small_crops_leave_the_views_as_they_were_and_split_by_rows():
    """Multi-crop draws the views' parameters first: with or without small crops a step sees the
    same views; the small crops are the local recipe's, at their size; rows of the global batch
    give what one process would."""
    from siamkit.config import build_config
    from siamkit.data import TrainingViews

    x = _images()
    data = build_config({"data.local_crops": 3, "data.data_root": "d"}, preset="speedrun").data
    plain = TrainingViews.from_config(
        build_config({"data.data_root": "d"}, preset="speedrun").data, channels_last=False
    )
    multi = TrainingViews.from_config(data, channels_last=False)
    v0, none = plain.draw(x, 8, 2, 32, torch.Generator().manual_seed(4), slice(0, 8))
    v1, local = multi.draw(x, 8, 2, 32, torch.Generator().manual_seed(4), slice(0, 8))
    assert none is None and torch.equal(v0, v1) and v0.shape == (2, 8, 3, 24, 24)
    assert local.shape == (3, 8, 3, 12, 12)
    g = torch.Generator().manual_seed(4)
    multi.main.sample(8, 2, 32, g)
    boxes = MultiViewAugment(data.local_augmentation(), 12).sample(8, 3, 32, g).box
    area = boxes[..., 2] * boxes[..., 3] / 32**2
    assert bool((area <= 0.4 * 1.2).all())  # rounding of the box's sides; the views reach the whole image
    halves = [multi.draw(x[r], 8, 2, 32, torch.Generator().manual_seed(4), r) for r in (slice(0, 4), slice(4, 8))]
    torch.testing.assert_close(torch.cat([halves[0][1], halves[1][1]], 1), local)
