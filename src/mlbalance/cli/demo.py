"""``mlbalance demo``: run the whole pipeline on the synthetic default."""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from mlbalance.cli._extras import needs_train_extras
from mlbalance.cli._options import add_seed_argument


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
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
    """Run ``mlbalance demo``."""
    from mlbalance.demo import STAGES, TORCH_STAGES, run_demo

    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    names = [name for name, _ in STAGES]
    last = max((names.index(s) for s in stages if s in names), default=-1) if stages else None
    runs = names if last is None else names[: last + 1]
    # check up front: the torch stages come after minutes of the others
    needs = needs_train_extras("demo") if set(runs) & set(TORCH_STAGES) else nullcontext()
    with needs:
        run_demo(
            args.out,
            rows=args.rows,
            labels=args.labels,
            seed=args.seed,
            overwrite=args.overwrite,
            stages=stages,
        )
    return 0
