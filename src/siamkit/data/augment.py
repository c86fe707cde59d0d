"""Batched multi-view augmentation on the training device, with per-sample random parameters.

The recipes are the papers' torchvision pipelines (GSG appendix B), applied to a whole batch at
once: every view of every image draws its own crop, flip, jitter factors, jitter order, grayscale
and blur, as a per-image DataLoader pipeline would, never one draw for the whole batch.

Parameters are drawn on the CPU from a ``torch.Generator`` for a whole *global* batch and then
applied to any slice of it, so a distributed run (each rank applying its rows) sees exactly the
views a single process would.

Differences from torchvision, all small and stated: the crop is resampled with ``grid_sample``
(bilinear, no antialiasing when a crop is shrunk; CIFAR crops are only enlarged),
and the blur is a Gaussian with kernel ``2*ceil(3*sigma_max)+1`` (SimSiam used PIL's radius blur).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from torch import Tensor

from siamkit.data.recipes import Recipe
from siamkit.registry import RECIPES

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, torchvision's rgb_to_grayscale


@dataclass
class AugParams:
    """Random parameters for ``V`` views of ``n`` images; every field has leading dims ``(V, n)``."""

    box: Tensor  # (V, n, 4) float: top, left, height, width of the crop, in input pixels
    flip: Tensor  # (V, n) bool
    jitter: Tensor  # (V, n) bool: colour jitter applied
    factors: Tensor  # (V, n, 4): brightness, contrast, saturation, hue
    order: Tensor  # (V, n, 4) int64: a permutation of the four jitter ops per sample
    gray: Tensor  # (V, n) bool
    blur: Tensor  # (V, n) bool
    sigma: Tensor  # (V, n)

    def rows(self, start: int, stop: int) -> AugParams:
        """The parameters of images ``start:stop`` (a rank's share of a global batch)."""
        return AugParams(**{f.name: getattr(self, f.name)[:, start:stop] for f in fields(self)})

    def to(self, device: torch.device | str) -> AugParams:
        return AugParams(**{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)})


def _uniform(lo: float, hi: float, shape: tuple[int, ...], g: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo


def sample_crop_boxes(
    shape: tuple[int, int],
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    g: torch.Generator | None = None,
    attempts: int = 10,
) -> Tensor:
    """torchvision's ``RandomResizedCrop.get_params`` for ``shape`` samples at once: up to
    ``attempts`` tries of (area scale, log-uniform aspect ratio); the first box that fits wins,
    else the centred fallback crop. Returns ``(*shape, 4)``: top, left, height, width."""
    area = float(height * width)
    target = area * _uniform(scale[0], scale[1], (*shape, attempts), g)
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), (*shape, attempts), g))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.to(torch.int8).argmax(-1, keepdim=True)  # index of the first fitting attempt
    w, h = w.gather(-1, first)[..., 0], h.gather(-1, first)[..., 0]
    found = ok.any(-1)
    # fallback (torchvision): the whole image, clamped to the ratio range, centred
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = torch.rand((*shape, 2), generator=g, dtype=torch.float64)
    top = torch.where(found, torch.floor(u[..., 0] * (height - h + 1)), torch.floor((height - h) / 2))
    left = torch.where(found, torch.floor(u[..., 1] * (width - w + 1)), torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], -1).float()


class MultiViewAugment:
    """``sample(n, views, in_size, g)`` draws parameters; ``apply(x, params)`` makes the views.

    ``x : (n, 3, S, S)`` uint8 on the training device -> ``(V, n, 3, size, size)`` float32,
    normalised; with ``channels_last`` each view ``out[v]`` is channels-last contiguous (what the
    model wants when it runs channels-last), else the output is plainly contiguous.
    """

    def __init__(self, recipe: Recipe | str, size: int | None = None, channels_last: bool = True):
        self.recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
        self.size = size or self.recipe.size
        self.channels_last = channels_last

    def sample(self, n: int, views: int, in_size: int, g: torch.Generator | None = None) -> AugParams:
        r = self.recipe
        shape = (views, n)
        box = sample_crop_boxes(shape, in_size, in_size, r.crop_scale, r.crop_ratio, g)
        b, c, s, h = r.jitter
        factors = torch.stack(
            [
                _uniform(max(0.0, 1 - b), 1 + b, shape, g),
                _uniform(max(0.0, 1 - c), 1 + c, shape, g),
                _uniform(max(0.0, 1 - s), 1 + s, shape, g),
                _uniform(-h, h, shape, g),
            ],
            -1,
        ).float()
        order = torch.rand((*shape, 4), generator=g).argsort(-1)  # a uniform random permutation per sample
        coins = torch.rand((4, *shape), generator=g)
        sigma = _uniform(*r.blur_sigma, shape, g).float()
        return AugParams(
            box=box,
            flip=coins[0] < r.flip_p,
            jitter=coins[1] < r.jitter_p,
            factors=factors,
            order=order,
            gray=coins[2] < r.gray_p,
            blur=coins[3] < r.blur_p,
            sigma=sigma,
        )

    def apply(self, x: Tensor, params: AugParams) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"expected square RGB images (n, 3, S, S), got {tuple(x.shape)}")
        views, n = params.flip.shape
        if n != x.shape[0]:
            raise ValueError(f"parameters for {n} images, got {x.shape[0]} images")
        params = params.to(x.device)
        r, s = self.recipe, self.size
        src = x.float().div_(255.0)  # (n, 3, S, S)
        mean = torch.tensor(r.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(r.std, device=x.device).view(1, 3, 1, 1)
        if self.channels_last:
            out = torch.empty((views, n, s, s, 3), device=x.device).permute(0, 1, 4, 2, 3)  # (V, n, 3, s, s)
        else:
            out = torch.empty((views, n, 3, s, s), device=x.device)
        for v in range(views):
            img = crop_resize(src, params.box[v], params.flip[v], s)
            if r.jitter_p > 0:
                img = _color_jitter(img, params.jitter[v], params.factors[v], params.order[v])
            if r.gray_p > 0:
                img = torch.where(params.gray[v].view(-1, 1, 1, 1), _grayscale(img).expand_as(img), img)
            if r.blur_p > 0:
                img = _blur(img, params.blur[v], params.sigma[v], r.blur_sigma[1])
            out[v].copy_((img - mean) / std)
        return out

    def __call__(self, x: Tensor, views: int, g: torch.Generator | None = None) -> Tensor:
        """Sample and apply in one go (single process)."""
        return self.apply(x, self.sample(x.shape[0], views, x.shape[-1], g))


def crop_resize(x: Tensor, box: Tensor, flip: Tensor, size: int) -> Tensor:
    """Crop ``box = (top, left, h, w)`` of each image and resize it to ``size`` (bilinear), mirrored
    where ``flip``; one ``grid_sample`` for the batch.

    Sample points are those of ``F.interpolate(crop, align_corners=False)`` on the cropped image,
    clamped to the crop's edge pixels, so the result equals cropping then resizing (torchvision's
    order) and never blends in pixels from outside the crop."""
    n, _, height, width = x.shape
    top, left, h, w = (t.unsqueeze(1) for t in box.to(x.device).unbind(-1))  # (n, 1) each
    centres = torch.arange(size, device=x.device, dtype=torch.float32) + 0.5  # (size,)
    xs = torch.minimum(torch.maximum(left + centres * w / size - 0.5, left), left + w - 1)  # (n, size)
    ys = torch.minimum(torch.maximum(top + centres * h / size - 0.5, top), top + h - 1)
    xs = torch.where(flip.to(x.device).unsqueeze(1), xs.flip(1), xs)
    grid = torch.empty(n, size, size, 2, device=x.device)
    grid[..., 0] = ((2 * xs + 1) / width - 1).unsqueeze(1)  # normalised, align_corners=False
    grid[..., 1] = ((2 * ys + 1) / height - 1).unsqueeze(2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _grayscale(x: Tensor) -> Tensor:
    r, g, b = x.unbind(-3)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(-3)


def _brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * f).clamp_(0, 1)


def _contrast(x: Tensor, f: Tensor) -> Tensor:
    mean = _grayscale(x).mean((-3, -2, -1), keepdim=True)
    return (f * x + (1 - f) * mean).clamp_(0, 1)


def _saturation(x: Tensor, f: Tensor) -> Tensor:
    return (f * x + (1 - f) * _grayscale(x)).clamp_(0, 1)


def _hue(x: Tensor, f: Tensor) -> Tensor:
    """torchvision's ``adjust_hue``: RGB -> HSV, shift H by ``f`` turns (mod 1), HSV -> RGB.

    HSV -> RGB in closed form: each channel is ``min + (max - min) * clamp(s_c |6H - a_c| + b_c, 0, 1)``
    (the fully saturated colour of hue H, scaled into the pixel's [min, max]), with
    ``(s, a, b) = (1, 3, -1), (-1, 2, 2), (-1, 4, 2)`` for R, G, B. This equals torchvision's
    six-sector table (the tests compare with kornia, which implements it).

    Written for the CPU, where hue was most of the augmentation time: plain arithmetic on
    one-channel planes only. Comparisons, ``where`` and broadcasting over channels were each
    measured 5-20x slower per element than arithmetic there, so the branch masks are built from
    ``sign`` (``maxc - r >= 0``, so ``1 - sign`` is 1 exactly where red is the maximum)."""
    r, g, b = x.unbind(-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    is_r = 1.0 - torch.sign(maxc - r)
    is_g = (1.0 - torch.sign(maxc - g)).mul_(1.0 - is_r)  # torchvision's order: red wins ties, then green
    is_b = (1.0 - is_r).sub_(is_g)
    # the hue in sixths of a turn, times delta, then divided by delta (1 where the pixel is gray)
    h = (g - b).mul_(is_r).add_((b - r).add_(delta, alpha=2).mul_(is_g)).add_((r - g).add_(delta, alpha=4).mul_(is_b))
    gray = 1.0 - torch.sign(delta)  # 1 where max == min, added exactly: delta + 1 - 1 rounds tiny deltas to 0
    h = h.div_(gray.add_(delta)).add_(6.0 * f.view(-1, 1, 1)).remainder_(6.0)  # shifted, [0, 6)
    out = torch.empty_like(x)
    for ch, (sign, a, c) in enumerate(((1.0, 3.0, -1.0), (-1.0, 2.0, 2.0), (-1.0, 4.0, 2.0))):
        pure = (h - a).abs_().mul_(sign).add_(c).clamp_(0.0, 1.0)
        torch.addcmul(minc, delta, pure, out=out.select(-3, ch))
    return out


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)


def _color_jitter(x: Tensor, on: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """torchvision's ColorJitter per sample: the four ops in that sample's random order.

    For each position in the order, each op runs once on the samples that have it there, so the
    work equals one pass of the four ops over the jittered samples."""
    x = x.clone()
    for pos in range(4):
        for k, op in enumerate(_JITTER_OPS):
            idx = (on & (order[:, pos] == k)).nonzero().flatten()
            if idx.numel():
                x[idx] = op(x[idx], factors[idx, k].view(-1, 1, 1, 1))
    return x


def _blur(x: Tensor, on: Tensor, sigma: Tensor, sigma_max: float) -> Tensor:
    idx = on.nonzero().flatten()
    if idx.numel() == 0:
        return x
    k = 2 * math.ceil(3 * sigma_max) + 1
    x = x.clone()
    s = sigma[idx].view(-1, 1).expand(-1, 2)
    x[idx] = gaussian_blur2d(x[idx], (k, k), s, border_type="reflect")
    return x


def center_normalize(x: Tensor, recipe: Recipe | str, size: int) -> Tensor:
    """The evaluation view: centre crop to ``size`` (when images were decoded larger, e.g. 256 for
    224) and the recipe's normalisation. ``(n, 3, S, S)`` uint8 -> ``(n, 3, size, size)`` float32."""
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    s = x.shape[-1]
    if s < size:
        raise ValueError(f"images of {s} px cannot be centre-cropped to {size} px")
    top = (s - size) // 2
    x = x[..., top : top + size, top : top + size].float().div_(255.0)
    mean = torch.tensor(r.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(r.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
