"""``mlbalance split``: iterative stratified train/val/test splits or k folds."""

from __future__ import annotations

import argparse
import sys
import time

from mlbalance.cli._options import (
    add_input_arguments,
    add_json_argument,
    add_output_arguments,
    add_seed_argument,
    comma_list,
    emit_json,
    ratio_list,
    spec_from_args,
)
from mlbalance.errors import ParameterError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "split",
        help="iterative stratified train/val/test splits or k folds",
        description="Split a multilabel dataset so that every label keeps its proportion in "
        "every split (iterative stratification, Sechidis et al. 2011; label pairs with "
        "--order 2, Szymański and Kajdanowicz 2017). Writes one Parquet file per split into "
        "--out, keeping every input column (the labels as one list column of label names) "
        "and the label vocabulary, plus __mlbalance__/split_report.json "
        "(LD, ED, FZ, labels absent per split, label counts per split). Every input row lands "
        "in exactly one split. Rare labels are spread over as many splits as they have rows.",
    )
    add_input_arguments(p)
    add_output_arguments(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--ratios",
        type=ratio_list,
        metavar="R1,R2,...",
        help="split proportions, > 0 and summing to 1 (default 0.8,0.1,0.1 = "
        "train,val,test; two ratios give train,test)",
    )
    how.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="K equal folds instead, written as fold-0 .. fold-K-1",
    )
    p.add_argument(
        "--names",
        type=comma_list,
        metavar="A,B,...",
        help="names of the splits (file names), one per ratio or fold",
    )
    p.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: stratify labels; 2: stratify label pairs (default 1)",
    )
    p.add_argument(
        "--groups",
        metavar="COL",
        help="column whose rows stay together in one split (document, author, ...)",
    )
    p.add_argument(
        "--shuffle",
        action="store_true",
        help="process rows in random order (ties are random either way)",
    )
    p.add_argument(
        "--ensure-eval-labels",
        action="store_true",
        help="every label with >= 2 rows gets a row in the evaluation split(s) "
        "(all but the first split; every fold)",
    )
    add_seed_argument(p)
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.split.files import split_to_folder

    if args.folds is not None and args.folds < 2:
        raise ParameterError(f"--folds must be at least 2, got {args.folds}")
    t0 = time.perf_counter()
    report, doc = split_to_folder(
        args.input,
        args.out,
        ratios=args.ratios,
        folds=args.folds,
        names=args.names,
        order=args.order,
        groups=args.groups,
        seed=args.seed,
        shuffle=args.shuffle,
        ensure_eval_labels=args.ensure_eval_labels,
        overwrite=args.overwrite,
        spec=spec_from_args(args),
    )
    secs = doc["seconds"]
    # With --json - the JSON owns stdout; the summary goes to stderr.
    stream = sys.stderr if args.json == "-" else sys.stdout
    print(
        f"split {doc['rows']:,} rows of {args.input} into {len(report.split_names)} splits "
        f"(order {args.order}, seed {args.seed}"
        + (f", groups {args.groups!r}" if args.groups else "")
        + ")",
        file=stream,
    )
    print(report.summary(), file=stream)
    print(
        f"wrote {', '.join(doc['files'].values())} and __mlbalance__/split_report.json to {args.out} "
        f"in {time.perf_counter() - t0:.1f} s (read {secs['read']:.1f} s, split "
        f"{secs['split']:.1f} s, write {secs['write']:.1f} s)",
        file=stream,
    )
    emit_json(doc, args.json)
    return 0
