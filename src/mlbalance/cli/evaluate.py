"""``mlbalance evaluate``: metrics of a trained model on a labelled split."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlbalance.cli._extras import needs_train_extras
from mlbalance.cli._options import (
    add_bucket_arguments,
    add_json_argument,
    add_label_arguments,
    add_model_arguments,
    add_per_label_arguments,
    check_batch_size,
    check_bucket_bounds,
    check_plot_path,
    emit_json,
    per_label_lines,
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
        "out. Without label flags the labels are read as the data's own metadata says, "
        "else in the layout of the model's training data (recorded in the model folder). A "
        "head on numeric features reads the columns it was trained on, with no flags.",
    )
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="model folder written by `mlbalance train`"
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="INPUT",
        help="labelled data: Parquet file or folder, CSV, TSV or JSONL (MULAN ARFF for a "
        "head on its features)",
    )
    add_model_arguments(parser)
    add_label_arguments(parser)
    add_per_label_arguments(parser)
    add_bucket_arguments(parser.add_argument_group("head/medium/tail buckets"))
    add_json_argument(parser)
    parser.set_defaults(func=run)


_LABEL_FLAGS = ("label_column", "label_sep", "label_names", "label_columns", "label_prefix")


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance evaluate``."""
    from mlbalance._progress import progress_bar
    from mlbalance.metrics import format_metrics

    check_batch_size(args)
    check_bucket_bounds(args)
    check_plot_path(args, [args.data, args.model])
    # no label flag: the data's own stored layout, else the one the model was trained on
    given = any(getattr(args, k, None) is not None for k in _LABEL_FLAGS)
    with needs_train_extras("evaluate"):
        from mlbalance.train.predict import evaluate_file

        with progress_bar(desc="evaluating", unit="rows") as bar:
            report = evaluate_file(
                args.model,
                args.data,
                spec=spec_from_args(args) if given else None,
                header_names=args.header_names,
                text_column=args.text_column,
                encoding=args.encoding,
                batch_size=args.batch_size,
                threshold=args.threshold,
                device=args.device,
                trust_remote_code=args.trust_remote_code,
                progress=bar.update,
                head_min=args.head_min,
                tail_max=args.tail_max,
            )
    which = "tuned thresholds" if args.threshold is None else f"threshold {args.threshold}"
    lines = [f"mlbalance evaluate: {report['rows']:,} rows of {args.data} with {args.model}"]
    if report["truncated"]:
        lines.append(f"  {report['truncated']:,} texts truncated at the model's max length")
    if report["unseen_labels"]:
        lines.append(
            f"  {len(report['unseen_labels'])} label(s) without training rows, left out: "
            + ", ".join(list(report["unseen_labels"])[:5])
        )
    lines.append(format_metrics(report["metrics_at_0.5"], title="threshold 0.5"))
    lines.append(format_metrics(report["metrics"], title=which))
    if report["train_counts_from"] == "data":
        lines.append(
            "  note: the model folder records no train label counts: buckets and train counts "
            "are the evaluated data's"
        )
    lines += per_label_lines(report["metrics"], args, title=f"per label ({which})")
    print("\n".join(lines), file=sys.stderr if args.json == "-" else sys.stdout)
    emit_json(report, args.json)
    return 0
