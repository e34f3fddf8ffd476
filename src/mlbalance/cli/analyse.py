"""``mlbalance analyse INPUT``: how imbalanced is a multilabel dataset, and what to do next.

Reads the label column only (never the text), computes every measure of
:func:`mlbalance.analyse.analyse` and prints a one-screen summary; ``--json``,
``--per-label`` and ``--plot`` write the report, the per-label table and the figures.

Other stages add their own report sections through :data:`EXTENSIONS`: a function
``(parser)`` that adds flags, and one ``(args, labels, report)`` that adds keys to the report
(before it is written as JSON) and returns extra summary lines (or None). For example, in the
module that owns the feature (imported before :func:`register` runs, e.g. at the end of this
file)::

    def _add_flags(parser):
        parser.add_argument("--repeat-threshold", type=float, metavar="T", help="...")

    def _extend(args, labels, report):
        if args.repeat_threshold is None:
            return None
        report["repeat_factors"] = {...}
        return [f"repeat factors  t={args.repeat_threshold}: ..."]

    EXTENSIONS.append((_add_flags, _extend))
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlbalance.cli._options import (
    add_bucket_arguments,
    add_input_arguments,
    add_json_argument,
    check_bucket_bounds,
    emit_json,
    non_negative_int,
    spec_from_args,
)
from mlbalance.errors import ParameterError

__all__ = ["EXTENSIONS", "register", "run"]

AddFlags = Callable[[argparse.ArgumentParser], None]
Extend = Callable[[argparse.Namespace, Any, dict[str, Any]], "list[str] | None"]
#: (add_flags, extend) pairs registered by other stages (e.g. the samplers' repeat factors).
EXTENSIONS: list[tuple[AddFlags, Extend]] = []


def _fraction(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction, got {value!r}") from None
    if not 0.0 < f < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {value!r}")
    return f


def register(subparsers: Any) -> None:
    """Add the ``analyse`` sub-command."""
    p = subparsers.add_parser(
        "analyse",
        help="measure label imbalance (IRLbl, MeanIR, SCUMBLE, buckets, rare labels)",
        description=(
            "Measure how imbalanced a multilabel dataset is: label counts, IRLbl, MeanIR, "
            "MaxIR, CVIR, SCUMBLE, TCS, labelsets, head/medium/tail buckets, minority labels, "
            "top co-occurring pairs and the labels too rare for k folds or a test split "
            "(definitions as the R package mldr). Reads the label column only."
        ),
        epilog=(
            "examples:\n"
            "  mlbalance analyse data.parquet\n"
            "  mlbalance analyse train.tsv --header-names text,labels,id --label-sep , "
            "--label-names labels.txt\n"
            "  mlbalance analyse yeast.arff --json - --plot yeast.png\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(p)
    p.add_argument(
        "--xml",
        metavar="PATH",
        help="MULAN XML label file of an ARFF input (default: NAME.xml beside it)",
    )
    add_json_argument(p)
    p.add_argument("--per-label", metavar="CSV", help="write the per-label table as CSV")
    p.add_argument(
        "--plot", metavar="PNG", help="save the long-tail curve and co-occurrence heatmap as PNG"
    )
    g = p.add_argument_group("thresholds")
    add_bucket_arguments(g)
    g.add_argument(
        "--folds",
        type=non_negative_int,
        default=5,
        metavar="K",
        help="flag labels with fewer than K rows (missing from some of K folds; default 5)",
    )
    g.add_argument(
        "--test-size",
        type=_fraction,
        default=0.1,
        metavar="F",
        help="flag labels a test split of fraction F would miss (default 0.1)",
    )
    g.add_argument(
        "--top-pairs",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="co-occurring label pairs to report (default 20)",
    )
    for add_flags, _ in EXTENSIONS:
        add_flags(p)
    p.set_defaults(func=run)


def _load(args: argparse.Namespace, stats: dict[str, int]) -> tuple[Any, int | None]:
    """The label matrix and, for ARFF, the number of features; fills the reader's *stats*."""
    path = Path(args.input)
    fmt = args.format or ("arff" if path.suffix.lower() == ".arff" else None)
    if fmt == "arff":
        from mlbalance.io.arff import read_arff

        if spec_from_args(args) is not None:
            raise ParameterError(
                f"{path}: label layout flags do not apply to ARFF input (the XML names the labels)"
            )

        features, labels = read_arff(path, args.xml)
        return labels, int(features.shape[1])
    if args.xml:
        raise ParameterError("--xml applies to ARFF input only")
    from mlbalance.io import read_labels

    labels = read_labels(path, spec_from_args(args), format=args.format, progress=True, stats=stats)
    return labels, None


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance analyse``."""
    from mlbalance.analyse import analyse, format_summary, plot_report, write_per_label_csv
    from mlbalance.io import check_not_input

    check_bucket_bounds(args)
    if args.folds < 2:
        raise ParameterError(f"--folds must be at least 2, got {args.folds}")
    outputs = [o for o in (args.per_label, args.plot, args.json) if o and o != "-"]
    for out in outputs:
        check_not_input(out, [args.input])
    stats: dict[str, int] = {}
    labels, n_features = _load(args, stats)
    report = analyse(
        labels,
        head_min=args.head_min,
        tail_max=args.tail_max,
        folds=args.folds,
        test_size=args.test_size,
        top_pairs=args.top_pairs,
        n_features=n_features,
    )
    report = {"source": str(args.input), **report}
    duplicates = int(stats.get("duplicate_labels", 0))
    report["duplicate_labels"] = duplicates
    extra: list[str] = []
    for _, extend in EXTENSIONS:
        lines = extend(args, labels, report)
        if lines:
            extra.extend(lines)
    if args.per_label:
        write_per_label_csv(report, args.per_label)
    if args.plot:
        plot_report(report, labels, args.plot)
    to_stdout = args.json == "-"
    summary = format_summary(report, source=str(args.input))
    if duplicates:
        summary += (
            f"\nnote: {duplicates:,} label(s) repeated within a row were counted once "
            "(the input lists them twice)"
        )
    if extra:
        summary += "\n" + "\n".join(extra)
    written = [
        f"{what} {p}"
        for what, p in (
            ("per-label table", args.per_label),
            ("plot", args.plot),
            ("JSON", args.json),
        )
        if p and p != "-"
    ]
    if written:
        summary += "\nwrote " + ", ".join(written)
    if to_stdout:
        import sys

        print(summary, file=sys.stderr)
    else:
        print(summary)
    emit_json(report, args.json)
    return 0


# --- extensions owned by other stages (imported here so they exist before register runs) ---
from mlbalance.cli import _repeat_exposure  # noqa: E402  (numpy only, no torch)

EXTENSIONS.append((_repeat_exposure.add_flags, _repeat_exposure.extend))
