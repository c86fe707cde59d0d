"""``siamkit experiment``: the papers' experiments at CPU scale, and their results page."""

from __future__ import annotations

import argparse
from pathlib import Path

from siamkit.errors import ConfigError
from siamkit.experiments import EXPERIMENTS, PROTOCOL, prepare_data, run_experiment, run_status
from siamkit.results import check_reproduction, seed_spread, write_results


def run(args: argparse.Namespace) -> int:
    """``siamkit experiment``: run, list, report or check the papers' experiments."""
    root = Path(args.root)
    protocol = {**PROTOCOL, "data.data_root": str(root / "data")}
    if args.report:
        page = Path(args.docs) / "results.md"
        if not page.exists():
            raise ConfigError(f"{page} not found: --docs must name the folder holding results.md")
        missing = write_results(root, Path(args.docs), EXPERIMENTS)
        print(f"updated {page}" + (f"; no markers for: {', '.join(missing)}" if missing else ""))
        return 0
    archive = Path(args.archive) if args.archive else None
    if args.check:
        if args.name not in EXPERIMENTS:
            raise ConfigError(f"--check needs an experiment name, one of {', '.join(EXPERIMENTS)}")
        archive = archive or Path(args.docs) / "results" / "runs"
        table, ok = check_reproduction(EXPERIMENTS[args.name], root, archive, seed_spread(EXPERIMENTS, archive))
        print(table)
        print(f"{args.name}: {'reproduced' if ok else 'NOT reproduced'} within 2x the seed spread of {archive}")
        return 0 if ok else 1
    if args.list or not args.name:
        for exp in EXPERIMENTS.values():
            states = [run_status(r, root, protocol, archive) for r in exp.runs]
            done = sum(s.trained or bool(s.diverged) for s in states)
            print(f"{exp.name:<13} {done}/{len(states)} runs trained  {exp.claim}")
        return 0
    if args.name not in (*EXPERIMENTS, "all"):
        raise ConfigError(f"unknown experiment {args.name!r}; choose one of {', '.join(EXPERIMENTS)}, or all")
    eval_data = prepare_data(root, Path(args.shared)) if not args.dry_run else {}
    suite = tuple(EXPERIMENTS.values())
    for exp in suite if args.name == "all" else [EXPERIMENTS[args.name]]:
        run_experiment(exp, root, protocol, eval_data, dry_run=args.dry_run, archive=archive, others=suite)
    return 0
