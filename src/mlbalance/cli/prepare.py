"""``mlbalance prepare``: split, then resample the training split only, in one command."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlbalance.cli._options import (
    add_input_arguments,
    add_json_argument,
    add_output_arguments,
    add_seed_argument,
    emit_json,
    ratio_list,
    spec_from_args,
)
from mlbalance.cli.resample import (
    add_method_arguments,
    features_from_args,
    resampler_from_args,
    warn_if_evaluation,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="split (iterative stratification), then resample the train split only",
        description="What most users want in one command: split INPUT by iterative "
        "stratification into train/val/test, resample the train split only (balanced shards + "
        "__mlbalance__/manifest.json in DIR/train), leave DIR/val and DIR/test untouched, and write one report "
        "of the whole run (DIR/__mlbalance__/prepare_report.json). Every file holds the labels as one list "
        "column of label names.",
    )
    add_input_arguments(p)
    p.add_argument(
        "--ratios",
        type=ratio_list,
        default=[0.8, 0.1, 0.1],
        metavar="R,R,R",
        help="split proportions train,val,test (default 0.8,0.1,0.1)",
    )
    p.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="stratify on labels (1, default) or label pairs (2)",
    )
    add_method_arguments(p)
    add_output_arguments(
        p, help="output folder (train/, val/, test/, __mlbalance__/prepare_report.json)"
    )
    add_seed_argument(p)
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.resample.prepare import prepare_dataset

    warn_if_evaluation(args.input)
    resampler = resampler_from_args(args)
    report = prepare_dataset(
        args.input,
        args.out,
        resampler,
        method=args.method,
        ratios=args.ratios,
        order=args.order,
        seed=args.seed,
        spec=spec_from_args(args),
        rows_per_shard=args.rows_per_shard,
        features=features_from_args(args),
        overwrite=args.overwrite,
    )
    # with --json - the JSON owns stdout; the summary goes to stderr
    print(summary(report, args), file=sys.stderr if args.json == "-" else sys.stdout)
    emit_json(report, args.json)
    return 0


def summary(report: dict[str, Any], args: argparse.Namespace) -> str:
    """The one-screen summary of a prepare run."""
    from mlbalance.resample.prepare import REPORT_NAME

    split = report["split"]
    lines = [
        f"prepare {args.input} -> {args.out}: {split['rows']:,} rows split "
        f"{','.join(str(r) for r in split['ratios'])} (seed {args.seed})"
    ]
    res = report["resample"]
    if res is None:
        lines.append(f"  train: {report['nothing_to_do']} (written as split)")
    else:
        rep, b, a = res["report"], res["measures_before"], res["measures_after"]
        lines.append(
            f"  train: {rep['input_rows']:,} -> {rep['output_rows']:,} rows by "
            f"{report['method']}; MeanIR {b['mean_ir']:.3g} -> {a['mean_ir']:.3g}, "
            f"MaxIR {b['max_ir']:.3g} -> {a['max_ir']:.3g}"
        )
    lines.extend(f"  {name}: untouched" for name in list(report["splits"])[1:])
    lines.append(
        f"  report: {args.out}/{REPORT_NAME}; shards: {args.out}/train/ "
        f"(mlbalance verify {args.out}/train)"
    )
    return "\n".join(lines)
