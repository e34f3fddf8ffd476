"""``mlbalance synth``: write the built-in synthetic long-tailed dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlbalance.cli._options import add_seed_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write the built-in synthetic long-tailed text dataset",
        description="Write a seeded synthetic multilabel text dataset with power-law label "
        "frequencies (head label > 10% of rows, rarest labels < 10 rows), co-occurrence "
        "clusters and text whose words depend on the labels, as Parquet.",
    )
    p.add_argument("--rows", type=int, default=10_000, help="rows (default 10000)")
    p.add_argument("--labels", type=int, default=500, help="labels (default 500)")
    p.add_argument(
        "--cardinality", type=float, default=3.0, help="target mean labels per row (default 3)"
    )
    p.add_argument(
        "--tail-count", type=int, default=5, help="rows of the rarest labels (default 5)"
    )
    p.add_argument(
        "--head-fraction",
        type=float,
        default=0.15,
        help="fraction of rows with the head label (default 0.15)",
    )
    p.add_argument("--no-text", action="store_true", help="labels only, no text column")
    add_seed_argument(p)
    p.add_argument("--out", required=True, metavar="PATH", help="output Parquet file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.synth import write_synthetic

    t0 = time.perf_counter()
    table = write_synthetic(
        Path(args.out),
        args.rows,
        args.labels,
        args.seed,
        overwrite=args.overwrite,
        text=not args.no_text,
        cardinality=args.cardinality,
        tail_count=args.tail_count,
        head_fraction=args.head_fraction,
    )
    print(
        f"wrote {table.num_rows:,} rows x {args.labels} labels to {args.out} "
        f"in {time.perf_counter() - t0:.1f} s (seed {args.seed})"
    )
    return 0
