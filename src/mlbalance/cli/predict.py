"""``mlbalance predict``: predicted labels and scores of a trained model, to Parquet."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlbalance.cli._extras import needs_train_extras
from mlbalance.cli._options import (
    add_encoding_argument,
    add_json_argument,
    add_model_arguments,
    add_table_arguments,
    check_batch_size,
    emit_json,
)


def register(subparsers: Any) -> None:
    """Add the ``predict`` command."""
    parser = subparsers.add_parser(
        "predict",
        help="predict labels with a trained model",
        description="Score every row of INPUT with a model folder from `mlbalance train` and "
        "write every input column plus `predicted_labels` (label names whose "
        "score reaches the label's tuned threshold) and `scores` (probabilities "
        "in the model's label order) to a Parquet file. A head on numeric features reads the "
        "columns it was trained on (recorded in the model folder), with no flags. The input's "
        "label column, if it has one, is written as a list of label names (read as the file "
        "stores it, else in the model's training layout), with the vocabulary in the file's "
        "metadata, as every file mlbalance writes.",
    )
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="model folder written by `mlbalance train`"
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="INPUT",
        help="Parquet file or folder, CSV, TSV or JSONL with the text (or feature) "
        "column(s) the model was trained on; MULAN ARFF for a head on its features",
    )
    parser.add_argument("--out", required=True, metavar="OUT.parquet", help="output file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    add_model_arguments(parser)
    add_table_arguments(parser, text_help="text column (default: the one the model trained on)")
    add_encoding_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance predict``."""
    from mlbalance._progress import progress_bar

    check_batch_size(args)
    with needs_train_extras("predict"):
        from mlbalance.train.predict import predict_file

        with progress_bar(desc="predicting", unit="rows") as bar:
            report = predict_file(
                args.model,
                args.data,
                args.out,
                batch_size=args.batch_size,
                threshold=args.threshold,
                overwrite=args.overwrite,
                device=args.device,
                trust_remote_code=args.trust_remote_code,
                text_column=args.text_column,
                header_names=args.header_names,
                encoding=args.encoding,
                progress=bar.update,
            )
    print(
        f"mlbalance predict: {report['rows']:,} rows -> {args.out}; "
        f"{report['mean_labels_per_row']:.2f} labels per row on average; "
        f"{report['labels_never_predicted']} label(s) never predicted"
        + (f"; {report['truncated']:,} texts truncated" if report["truncated"] else ""),
        file=sys.stderr if args.json == "-" else sys.stdout,
    )
    emit_json(report, args.json)
    return 0
