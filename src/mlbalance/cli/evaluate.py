"""``mlbalance evaluate``: metrics of a trained model on a labelled split."""

from __future__ import annotations

import argparse
from typing import Any

from mlbalance.cli._options import (
    add_json_argument,
    add_label_arguments,
    add_model_arguments,
    check_batch_size,
    emit_json,
    spec_from_args,
)


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of a trained model on a labelled split",
        description="Score a labelled split with a model folder from `mlbalance train` and "
        "report micro/macro precision, recall, F1, macro mAP and head/medium/tail "
        "recall, at the per-label thresholds tuned on val (thresholds.json) and "
        "at 0.5. Labels the model never saw in training are reported and left "
        "out.",
    )
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="model folder written by `mlbalance train`"
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="INPUT",
        help="labelled data: Parquet file or folder, CSV, TSV or JSONL",
    )
    add_model_arguments(parser)
    add_label_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance evaluate``."""
    from mlbalance._progress import progress_bar
    from mlbalance.metrics import format_metrics
    from mlbalance.train.predict import evaluate_file

    check_batch_size(args)
    with progress_bar(desc="evaluating", unit="rows") as bar:
        report = evaluate_file(
            args.model,
            args.data,
            spec=spec_from_args(args),
            batch_size=args.batch_size,
            threshold=args.threshold,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            progress=bar.update,
        )
    which = "tuned thresholds" if args.threshold is None else f"threshold {args.threshold}"
    print(f"mlbalance evaluate: {report['rows']:,} rows of {args.data} with {args.model}")
    if report["truncated"]:
        print(f"  {report['truncated']:,} texts truncated at the model's max length")
    if report["unseen_labels"]:
        print(
            f"  {len(report['unseen_labels'])} label(s) without training rows, left out: "
            + ", ".join(list(report["unseen_labels"])[:5])
        )
    print(format_metrics(report["metrics_at_0.5"], title="threshold 0.5"))
    print(format_metrics(report["metrics"], title=which))
    emit_json(report, args.json)
    return 0
