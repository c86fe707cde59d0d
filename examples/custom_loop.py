"""A complete BYOL-with-GSG training loop in plain PyTorch, from siamkit's public pieces.

    python examples/custom_loop.py --epochs 5

Dataset (the embedded digits), batched multi-view augmentation, the Siamese network, the momentum
target and the GSG objective (``siamkit.losses.gsg``) are siamkit's; the loop is yours to change.
Written out here rather than calling ``siamkit.train.step`` so every line of GSG's Algorithm 1 is
visible: pair each image with one of the shuffled batch, two views of each, predictor on the
closest cross-image pair.
"""

from __future__ import annotations

import argparse

import torch

from siamkit.data import MultiViewAugment, load_digits
from siamkit.evaluate import extract_features, knn_accuracy
from siamkit.losses import gsg
from siamkit.models import ModelConfig, MomentumTarget, SiameseNet


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (for tests)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    train, test = load_digits("train"), load_digits("test")  # uint8 (N, 3, 32, 32)
    aug = MultiViewAugment("digits")
    net = SiameseNet(ModelConfig(backbone="resnet10_cifar", width=args.width, proj_dim=512, proj_hidden=512))
    target = MomentumTarget(net)  # BYOL's EMA copy of backbone + projector
    opt = torch.optim.SGD(net.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)

    step = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(train), generator=g)
        for start in range(0, len(train) - args.batch_size + 1, args.batch_size):
            x = train.images[order[start : start + args.batch_size]]  # (B, 3, 32, 32) uint8
            views = aug(x, views=4, g=g)  # (4, B, 3, 32, 32): views 0-1 of each image, 2-3 for its partner
            perm = torch.randperm(x.shape[0], generator=g)  # partner of image b is image perm[b]
            _, p = net(views)  # online predictions (4, B, D); in BYOL the targets come from the EMA copy
            zt = target(views)  # momentum-target projections, no graph, (4, B, D)
            loss = gsg(p[:2], zt[:2], p[2:, perm], zt[2:, perm], mode="guided")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            target.update(net, tau=0.99)  # constant tau, as the GSG authors' BYOL
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        print(f"epoch {epoch + 1}: loss {loss.item():+.4f}")
        if args.max_steps and step >= args.max_steps:
            break

    f_train, y_train = extract_features(net.backbone, train, recipe="digits", size=32)
    f_test, y_test = extract_features(net.backbone, test, recipe="digits", size=32)
    acc = knn_accuracy(f_train, y_train, f_test, y_test, k=1, temperature=None)
    print(f"1-NN accuracy of the backbone on the digits test split: {acc:.1f}%")
    return acc


if __name__ == "__main__":
    main()
