"""Training throughput against lightly: the step alone and the whole epoch, SimSiam and BYOL.

    .bench-venv/bin/python benchmarks/vs_lightly.py --data-root DIR [--backbone resnet10_cifar --width 32]
        [--batch 256] [--steps 8] [--repeats 3] [--workers 0 1 2] [--methods simsiam byol]

Both sides train the same network: siamkit's CIFAR ResNet backbone, the CIFAR projector (Linear+BN+
ReLU, Linear+BN, 2048-d) and the bottleneck predictor (2048-512-2048), SGD (lr 0.06, momentum 0.9,
wd 5e-4), bf16 autocast and channels_last, the same torch in one process.

lightly's side is built the way its CIFAR-10 benchmark builds it: lightly's heads
(``ProjectionHead`` with the CIFAR layer list, ``SimSiamPredictionHead``), ``NegativeCosineSimilarity``
on each view's forward, for BYOL deep copies of backbone and projector with
``deactivate_requires_grad`` / ``update_momentum`` and the cosine momentum schedule; its data is
CIFAR-10 as PIL images through lightly's ``SimSiamTransform(input_size=32, gaussian_blur=0)``
(the SimSiam CIFAR recipe, the same as siamkit's) in a ``DataLoader`` with 0, 1 or 2 workers. The
training loop is a plain PyTorch loop (no Lightning Trainer around it, which only adds time).

siamkit's side: the step alone is ``siamkit.train.step`` with the optimizer and momentum update, as
the training loop runs it; the whole epoch is ``siamkit.train.pretrain`` itself on a subset
(``steps x batch`` images, kNN off), read from its ``metrics.jsonl``.

"Step alone" feeds both sides the same pre-augmented float views. "Whole epoch" includes data,
augmentation and the step. Every measurement is a window of ``--steps`` steps; the windows of all
measurements run interleaved, round after round (the machine's speed drifts between minutes),
and each reports its median over ``--repeats`` rounds after a warm-up round.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from _timing import interleaved, short_pretrain
from torch import nn

from siamkit.data import load_cifar
from siamkit.methods import resolve_method
from siamkit.models import ModelConfig, SiameseNet
from siamkit.models.momentum import MomentumTarget
from siamkit.train import step
from siamkit.train.memory import keep_freed_memory

CL = torch.channels_last


def _sgd(params):
    return torch.optim.SGD(params, lr=0.06, momentum=0.9, weight_decay=5e-4)


class LightlyModel(nn.Module):
    """SimSiam or BYOL assembled from lightly's parts, around siamkit's backbone."""

    def __init__(self, backbone: nn.Module, feat: int, method: str, total_steps: int):
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules.heads import ProjectionHead, SimSiamPredictionHead
        from lightly.models.utils import deactivate_requires_grad

        super().__init__()
        self.backbone = backbone
        self.projection_head = ProjectionHead(
            [(feat, 2048, nn.BatchNorm1d(2048), nn.ReLU(inplace=True)), (2048, 2048, nn.BatchNorm1d(2048), None)]
        )
        self.prediction_head = SimSiamPredictionHead(2048, 512, 2048)
        self.criterion = NegativeCosineSimilarity()
        self.method, self.total_steps, self.step_no = method, total_steps, 0
        if method == "byol":
            self.backbone_momentum = copy.deepcopy(self.backbone)
            self.projection_head_momentum = copy.deepcopy(self.projection_head)
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.projection_head_momentum)

    def training_step(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if self.method == "simsiam":
            z0 = self.projection_head(self.backbone(x0).flatten(start_dim=1))
            z1 = self.projection_head(self.backbone(x1).flatten(start_dim=1))
            p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
            return 0.5 * (self.criterion(z0.detach(), p1) + self.criterion(z1.detach(), p0))
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        m = cosine_schedule(self.step_no, self.total_steps, 0.99, 1.0)
        self.step_no += 1
        update_momentum(self.backbone, self.backbone_momentum, m=m)
        update_momentum(self.projection_head, self.projection_head_momentum, m=m)
        p0 = self.prediction_head(self.projection_head(self.backbone(x0).flatten(start_dim=1)))
        p1 = self.prediction_head(self.projection_head(self.backbone(x1).flatten(start_dim=1)))
        with torch.no_grad():
            z0 = self.projection_head_momentum(self.backbone_momentum(x0).flatten(start_dim=1))
            z1 = self.projection_head_momentum(self.backbone_momentum(x1).flatten(start_dim=1))
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))


def lightly_train_step(model: LightlyModel, opt):
    def run(x0, x1):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.training_step(x0.contiguous(memory_format=CL), x1.contiguous(memory_format=CL))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run


def siamkit_train_step(net: SiameseNet, method: str, total_steps: int):
    spec = resolve_method(method)
    target = MomentumTarget(net) if spec.target == "momentum" else None
    opt = _sgd(net.parameters())

    def run(views):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = step(net, spec, views, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if target is not None:
            target.update(net, 0.99)

    return run


class CifarPIL(torch.utils.data.Dataset):
    """CIFAR-10 training images as PIL images, as torchvision's CIFAR10 dataset hands them out."""

    def __init__(self, images: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, 3) uint8
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--backbone", default="resnet10_cifar")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=["simsiam", "byol"])
    args = parser.parse_args()
    import lightly

    keep_freed_memory()  # what siamkit's training does; set first, so both sides run on the same allocator
    b, steps = args.batch, args.steps
    train = load_cifar("cifar10", Path(args.data_root), "train")
    print(
        f"{args.backbone} width {args.width}, batch {b}, bf16 + channels_last, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, lightly {lightly.__version__}; every measurement a window of {steps} steps, "
        f"all of them interleaved, median of {args.repeats} rounds after a warm-up round; images/s\n"
    )
    head = ["method", "siamkit step", "lightly step", "step ratio", "siamkit epoch"]
    head += [f"lightly epoch, {w} workers" for w in args.workers]
    head += ["epoch ratio (vs lightly's best)", "siamkit epoch / its step"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for method in args.methods:
        seconds = interleaved(measurements(args, method, train), args.repeats)
        rate = {name: steps * b / sec for name, sec in seconds.items()}
        best = max(rate[f"lightly epoch {w}"] for w in args.workers)
        ours_step, ours_epoch = rate["siamkit step"], rate["siamkit epoch"]
        row = [method, f"{ours_step:.0f}", f"{rate['lightly step']:.0f}", f"{ours_step / rate['lightly step']:.2f}x"]
        row += [f"{ours_epoch:.0f}", *(f"{rate[f'lightly epoch {w}']:.0f}" for w in args.workers)]
        row += [f"{ours_epoch / best:.2f}x", f"{100 * ours_epoch / ours_step:.0f} %"]
        print("| " + " | ".join(row) + " |", flush=True)


def measurements(args, method: str, train) -> dict:
    """One window of each measurement: the two steps alone, siamkit's epoch, lightly's epochs."""
    from lightly.transforms import SimSiamTransform

    b, steps = args.batch, args.steps
    mcfg = ModelConfig(backbone=args.backbone, width=args.width)
    total = (args.repeats + 1) * steps
    torch.manual_seed(0)
    views = torch.randn(2, b, 32, 32, 3).permute(0, 1, 4, 2, 3)  # pre-augmented, channels-last
    ours = siamkit_train_step(SiameseNet(mcfg).to(memory_format=CL), method, total)
    torch.manual_seed(0)
    backbone = SiameseNet(mcfg).backbone  # the same backbone class and init as siamkit's
    model = LightlyModel(backbone, backbone.feature_dim, method, total * (2 + len(args.workers))).to(memory_format=CL)
    theirs = lightly_train_step(model, _sgd(p for p in model.parameters() if p.requires_grad))

    def repeat(fn):
        def window():
            for _ in range(steps):
                fn()

        return window

    fns = {
        "siamkit step": repeat(lambda: ours(views)),
        "lightly step": repeat(lambda: theirs(views[0], views[1])),
        "siamkit epoch": lambda: siamkit_epoch_seconds(args, method),
    }
    dataset = CifarPIL(train.images, SimSiamTransform(input_size=32, gaussian_blur=0.0))
    for w in args.workers:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=b, shuffle=True, drop_last=True, num_workers=w, persistent_workers=w > 0
        )
        it = iter(loader)

        def one(it=it):
            (x0, x1), _ = next(it)
            theirs(x0, x1)

        fns[f"lightly epoch {w}"] = repeat(one)
    return fns


def siamkit_epoch_seconds(args, method: str) -> float:
    """``siamkit.train.pretrain`` itself for two epochs of ``steps`` steps (kNN monitor off);
    the seconds of the second epoch as the loop measured them (data, augmentation, steps)."""
    rows = short_pretrain(
        {
            "method.name": method,
            "data.dataset": "cifar10",
            "data.data_root": args.data_root,
            "data.train_subset": args.steps * args.batch,
            "model.backbone": args.backbone,
            "model.width": args.width,
            "train.batch_size": args.batch,
            "train.epochs": 2,
            "train.precision": "bf16",
            "train.knn_every": 0,
            "train.knn_train_subset": 100,
        }
    )
    return rows[-1]["seconds"]


if __name__ == "__main__":
    main()
