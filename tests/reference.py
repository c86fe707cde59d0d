"""Plain-loop references written straight from the papers' equations and pseudocode.

Slow on purpose: one sample, one pair, one view at a time, so each line can be checked against the
paper. The vectorised code in ``siamkit.losses`` and ``siamkit.train.step`` is tested against these.
"""

from __future__ import annotations

import math

import torch


def D(p: torch.Tensor, z: torch.Tensor) -> float:
    """SimSiam's D: negative cosine similarity of two vectors, in float64 on plain numbers."""
    p = [float(v) for v in p]
    z = [float(v) for v in z]
    dot = sum(a * b for a, b in zip(p, z, strict=True))
    return -dot / (math.sqrt(sum(a * a for a in p)) * math.sqrt(sum(b * b for b in z)))


def dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def simsiam_loop(p: torch.Tensor, z: torch.Tensor) -> float:
    """SimSiam eq. (1) for V = 2, SimSiam K-aug for V = K, multi-crop for G < V targets: mean over
    the ordered pairs (i < V, j < G, i != j) and the batch."""
    v, b, _ = p.shape
    g = z.shape[0]
    total, pairs = 0.0, 0
    for n in range(b):
        for i in range(v):
            for j in range(g):
                if i != j:
                    total += D(p[i, n], z[j, n])
                    pairs += 1
    return total / pairs


def gsg_pair_loop(p11, p12, p21, p22, z11, z12, z21, z22, mode="guided", draw=None) -> tuple[float, int]:
    """GSG Algorithm 1 (appendix A) for one pair of images: the if/elif chain, as printed.

    Returns ``0.5 * l`` and the chosen case index. ``reverse`` applies eq. (7): the complementary
    case. ``random`` takes the case from ``draw``.
    """
    d1121, d1122, d1221, d1222 = dist(z11, z21), dist(z11, z22), dist(z12, z21), dist(z12, z22)
    m = min(d1121, d1122, d1221, d1222)
    if d1121 == m:
        case = 0
    elif d1122 == m:
        case = 1
    elif d1221 == m:
        case = 2
    else:
        case = 3
    if mode == "reverse":
        case = {0: 3, 1: 2, 2: 1, 3: 0}[case]
    elif mode == "random":
        case = int(draw)
    if case == 0:
        l = D(p11, z12) + D(p21, z22)
    elif case == 1:
        l = D(p11, z12) + D(p22, z21)
    elif case == 2:
        l = D(p12, z11) + D(p21, z22)
    else:
        l = D(p12, z11) + D(p22, z21)
    return 0.5 * l, case


def gsg_loop(p1, z1, p2, z2, mode="guided", draws=None) -> tuple[float, list[int]]:
    """Mean over pairs of :func:`gsg_pair_loop`: ``loss = sum(loss) / len(loss)`` in Algorithm 1."""
    losses, cases = [], []
    for n in range(p1.shape[1]):
        l, c = gsg_pair_loop(
            p1[0, n],
            p1[1, n],
            p2[0, n],
            p2[1, n],
            z1[0, n],
            z1[1, n],
            z2[0, n],
            z2[1, n],
            mode=mode,
            draw=None if draws is None else draws[n],
        )
        losses.append(l)
        cases.append(c)
    return sum(losses) / len(losses), cases


def ensemble_loop(p: torch.Tensor, z: torch.Tensor, leave_one_out: bool = False) -> float:
    """EnSiam: L = (1/V) sum_v D(p_v, sg zbar), zbar the mean of the K projections (or of j != v
    for the views that gave one); predictions v >= K are multi-crop's small crops."""
    v, b, d = p.shape
    k = z.shape[0]
    total = 0.0
    for n in range(b):
        for i in range(v):
            members = [j for j in range(k) if j != i] if leave_one_out else list(range(k))
            zbar = [sum(float(z[j, n, c]) for j in members) / len(members) for c in range(d)]
            total += D(p[i, n], torch.tensor(zbar, dtype=torch.float64))
    return total / (v * b)


def crop_params_loop(height, width, scale, ratio, rng):
    """torchvision's RandomResizedCrop.get_params, line by line, with Python's ``random``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = round(math.sqrt(target_area * aspect_ratio))
        h = round(math.sqrt(target_area / aspect_ratio))
        if 0 < w <= width and 0 < h <= height:
            i = rng.randint(0, height - h)
            j = rng.randint(0, width - w)
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = round(w / min(ratio))
    elif in_ratio > max(ratio):
        h = height
        w = round(h * max(ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def color_jitter_loop(img, factors, order, adjust_hue):
    """torchvision's ColorJitter on one image (3, H, W) in [0, 1], ops in ``order``."""
    gray = lambda x: (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]  # noqa: E731
    for k in order:
        f = float(factors[k])
        if k == 0:
            img = (img * f).clamp(0, 1)
        elif k == 1:
            img = (f * img + (1 - f) * gray(img).mean()).clamp(0, 1)
        elif k == 2:
            img = (f * img + (1 - f) * gray(img)).clamp(0, 1)
        else:
            img = adjust_hue(img[None], torch.tensor([f * 2 * math.pi]))[0]
    return img
