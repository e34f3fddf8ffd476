"""``mlbalance demo``: run the whole pipeline on the synthetic default."""

from __future__ import annotations

import argparse

from mlbalance.cli._options import add_seed_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the built-in synthetic data",
        description="Generate the synthetic long-tailed dataset and run every mlbalance stage "
        "on it (analyse, split, resample, sample, train, ...), printing each stage's summary.",
    )
    p.add_argument(
        "--out",
        default="demo-output",
        metavar="DIR",
        help="folder for the demo's files (default demo-output)",
    )
    p.add_argument("--rows", type=int, default=20_000, help="synthetic rows (default 20000)")
    p.add_argument("--labels", type=int, default=500, help="synthetic labels (default 500)")
    p.add_argument(
        "--stages",
        metavar="A,B",
        help="stop after these stages (comma-separated; the stages before them run too, "
        "since each reads what the earlier ones wrote)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="reuse a non-empty demo folder (default: refuse)"
    )
    add_seed_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.demo import run_demo

    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    run_demo(
        args.out,
        rows=args.rows,
        labels=args.labels,
        seed=args.seed,
        overwrite=args.overwrite,
        stages=stages,
    )
    return 0
