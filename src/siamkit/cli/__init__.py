"""The ``siamkit`` command line: thin, it parses, builds a config and calls the library.

Every :class:`~siamkit.errors.SiamkitError` becomes one line on stderr and its exit code (2, or
130 for an interrupted run); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from siamkit.cli import commands
from siamkit.cli.parser import build_parser
from siamkit.errors import Interrupted, SiamkitError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = getattr(commands, {"eval": "evaluate"}.get(args.command, args.command))
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
