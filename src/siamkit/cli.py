"""The ``siamkit`` command line: thin, it parses, builds a config and calls the library."""

from __future__ import annotations

import argparse
import sys

from siamkit.methods import methods_table


def _methods(args: argparse.Namespace) -> int:
    print(methods_table())
    return 0


def _demo(args: argparse.Namespace) -> int:
    """One training step of every registered method on random images (until pretraining lands)."""
    import torch

    from siamkit.methods import METHODS
    from siamkit.models import ModelConfig, MomentumTarget, SiameseNet
    from siamkit.train import step

    torch.manual_seed(0)
    print(methods_table(), end="\n\n")
    for spec in METHODS.values():
        net = SiameseNet(ModelConfig(backbone="resnet10_cifar", width=8, proj_dim=64, proj_hidden=64))
        target = MomentumTarget(net) if spec.target == "momentum" else None
        loss, m = step(net, spec, torch.randn(spec.views_drawn, 16, 3, 32, 32), target)
        print(f"{spec.name:<22} loss {loss.item():+.4f}  z_std {m['z_std'].item():.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("methods", help="list the registered methods")
    p.set_defaults(func=_methods)
    p = sub.add_parser("demo", help="show what siamkit does on this machine")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
