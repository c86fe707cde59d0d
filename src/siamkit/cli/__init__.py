"""The ``siamkit`` command line: thin, it parses, builds a config and calls the library.

Every :class:`~siamkit.errors.SiamkitError` becomes one line on stderr and its exit code (2, or
130 for an interrupted run); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from siamkit.cli import commands
from siamkit.cli.parser import build_parser
from siamkit.errors import Interrupted, SiamkitError
from siamkit.models.external import trust_backbone


def _trust(args) -> None:
    """A ``package.module:factory`` backbone is imported only when this command line names it."""
    named = list(getattr(args, "trust_backbone", None) or [])
    if getattr(args, "backbone", None):
        named.append(args.backbone)
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        if key.strip() == "model.backbone":
            named.append(value.strip())
    for spec in named:
        trust_backbone(spec)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = getattr(commands, {"eval": "evaluate"}.get(args.command, args.command))
    _trust(args)
    try:
        return command(args)
    except Interrupted as e:
        print(f"siamkit: {e}", file=sys.stderr)
        return e.exit_code
    except SiamkitError as e:
        print(f"siamkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("siamkit: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
