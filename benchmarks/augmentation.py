"""Augmentation speed: siamkit's batched multi-view pipeline against torchvision.transforms.v2 per image.

    python benchmarks/augmentation.py [--repeats 5] [--batch 256]

Both sides make two augmented, normalised float views of each uint8 image, with the same recipe
(the SimSiam/GSG CIFAR recipe at 32 px; the ImageNet recipe, with Gaussian blur, at 224 px from
256 px sources). torchvision's side is the standard DataLoader recipe: a ``v2.Compose`` applied to
one image at a time, as a Dataset's ``__getitem__`` does in a worker (one process here; a loader
with W workers can at best multiply it by W on W free cores, and the model needs those cores too).
siamkit's side is ``MultiViewAugment.sample`` + ``apply`` on the whole batch, as the training loop
runs it. Images per second = source images turned into two views, median of ``--repeats`` after a
warm-up, the two sides interleaved. Also: siamkit's time split by stage, to show where the batched
pipeline spends it. The ImageNet-recipe sources are random pixels (no 256 px dataset here): the cost does not depend on
the content.
"""

from __future__ import annotations

import argparse
import math

import torch
from _timing import interleaved

from siamkit.data import augment as A
from siamkit.data.augment import RECIPES, MultiViewAugment


def torchvision_pipeline(recipe: A.Recipe, size: int):
    from torchvision.transforms import v2

    b, c, s, h = recipe.jitter
    steps = [
        v2.RandomResizedCrop(size, scale=recipe.crop_scale, ratio=recipe.crop_ratio, antialias=True),
        v2.RandomHorizontalFlip(recipe.flip_p),
        v2.RandomApply([v2.ColorJitter(b, c, s, h)], p=recipe.jitter_p),
        v2.RandomGrayscale(recipe.gray_p),
    ]
    if recipe.blur_p > 0:
        k = 2 * math.ceil(3 * recipe.blur_sigma[1]) + 1  # the kernel siamkit uses
        steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=recipe.blur_sigma)], p=recipe.blur_p))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(recipe.mean, recipe.std)]
    return v2.Compose(steps)


def stages(aug: MultiViewAugment, x: torch.Tensor, views: int) -> dict[str, float]:
    """Seconds per batch of each stage of ``MultiViewAugment.apply``, run stage by stage."""
    r, s = aug.recipe, aug.size
    g = torch.Generator().manual_seed(0)
    p = aug.sample(x.shape[0], views, x.shape[-1], g)
    src = x.float().div_(255.0)
    crops = [A.crop_resize(src, p.box[v], p.flip[v], s) for v in range(views)]
    v_crops = list(enumerate(crops))
    out = {
        "sample parameters": lambda: aug.sample(x.shape[0], views, x.shape[-1], g),
        "crop + resize + flip": lambda: [A.crop_resize(src, p.box[v], p.flip[v], s) for v in range(views)],
        "colour jitter": lambda: [A._color_jitter(c, p.jitter[v], p.factors[v], p.order[v]) for v, c in v_crops],
        "grayscale": lambda: [torch.where(p.gray[v].view(-1, 1, 1, 1), A._grayscale(c), c) for v, c in v_crops],
    }
    if r.blur_p > 0:
        out["blur"] = lambda: [A._blur(c, p.blur[v], p.sigma[v], r.blur_sigma[1]) for v, c in enumerate(crops)]
    return interleaved({name: _discard(fn) for name, fn in out.items()}, 3)


def _discard(fn):
    """``fn`` without its result: ``interleaved`` reads a returned number as self-measured seconds."""

    def call() -> None:
        fn()

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--imagenet-batch", type=int, default=32)
    args = parser.parse_args()
    views = 2
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print("| recipe | source -> view | siamkit batched (img/s) | torchvision v2 per image (img/s) | ratio |")
    print("|---|---|---|---|---|")
    splits = {}
    for name, src_size, batch in (("cifar", 32, args.batch), ("imagenet", 256, args.imagenet_batch)):
        recipe = RECIPES[name]
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (batch, 3, src_size, src_size), dtype=torch.uint8, generator=g)
        aug = MultiViewAugment(recipe)
        tv = torchvision_pipeline(recipe, recipe.size)
        n = min(batch, 64)

        def per_image(tv=tv, x=x, n=n):
            for i in range(n):
                for _ in range(views):
                    tv(x[i])

        def batched(aug=aug, x=x, g=g):
            aug(x, views, g)

        seconds = interleaved({"ours": batched, "theirs": per_image}, args.repeats)
        ours, theirs = batch / seconds["ours"], n / seconds["theirs"]
        sizes = f"{src_size} -> {recipe.size} px"
        print(f"| {name} | {sizes} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.1f}x |", flush=True)
        splits[name] = stages(aug, x, views)
    for name, split in splits.items():
        total = sum(split.values())
        print(f"\nsiamkit {name} recipe, time per batch by stage:\n")
        print("| stage | ms per batch | share |")
        print("|---|---|---|")
        for stage, sec in split.items():
            print(f"| {stage} | {sec * 1000:.1f} | {100 * sec / total:.0f} % |")


if __name__ == "__main__":
    main()
