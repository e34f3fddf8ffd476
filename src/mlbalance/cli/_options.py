"""Options shared by several commands, defined once."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from mlbalance.errors import ParameterError
from mlbalance.io import LabelSpec, write_json

__all__ = [
    "add_bucket_arguments",
    "add_encoding_argument",
    "add_input_arguments",
    "add_json_argument",
    "add_label_arguments",
    "add_model_arguments",
    "add_output_arguments",
    "add_per_label_arguments",
    "add_seed_argument",
    "add_table_arguments",
    "check_batch_size",
    "check_bucket_bounds",
    "comma_list",
    "emit_json",
    "non_negative_int",
    "per_label_lines",
    "ratio_list",
    "spec_from_args",
]


def comma_list(value: str) -> list[str]:
    """Parse ``a,b,c`` into a list (empty items dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def ratio_list(value: str) -> list[float]:
    """Parse ``0.8,0.1,0.1`` into floats (argparse ``type=``; sums are checked by the library)."""
    try:
        return [float(v) for v in comma_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ratios must be numbers like 0.8,0.1,0.1, got {value!r}"
        ) from None


def non_negative_int(value: str) -> int:
    """A whole number >= 0 (argparse ``type=``)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return n


def add_bucket_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--head-min`` and ``--tail-max``: the head/medium/tail bounds of :mod:`mlbalance.buckets`.

    ``train`` has the same flags from its :class:`~mlbalance.train.config.TrainConfig` fields,
    with the same defaults and help (:data:`mlbalance.buckets.HEAD_MIN_HELP`).
    """
    from mlbalance.buckets import DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX, HEAD_MIN_HELP, TAIL_MAX_HELP

    parser.add_argument(
        "--head-min", type=non_negative_int, default=DEFAULT_HEAD_MIN, metavar="N",
        help=f"{HEAD_MIN_HELP} (default {DEFAULT_HEAD_MIN})",
    )  # fmt: skip
    parser.add_argument(
        "--tail-max", type=non_negative_int, default=DEFAULT_TAIL_MAX, metavar="N",
        help=f"{TAIL_MAX_HELP} (default {DEFAULT_TAIL_MAX})",
    )  # fmt: skip


def check_bucket_bounds(args: argparse.Namespace) -> None:
    """Refuse ``--tail-max`` above ``--head-min`` (one line)."""
    if args.tail_max > args.head_min:
        raise ParameterError(
            f"--tail-max ({args.tail_max}) must not exceed --head-min ({args.head_min})"
        )


def add_per_label_arguments(parser: argparse.ArgumentParser) -> None:
    """``--per-label`` (print the per-label table) and ``--plot PNG`` of ``train``/``evaluate``."""
    parser.add_argument(
        "--per-label", action="store_true",
        help="print a per-label table (train count, bucket, support, precision, recall, F1, "
        "threshold), most frequent in training first; the rows are in the --json report anyway",
    )  # fmt: skip
    parser.add_argument(
        "--plot", metavar="PNG",
        help="save per-label F1 against train frequency (log scale, coloured by bucket) as PNG",
    )  # fmt: skip


def check_plot_path(
    args: argparse.Namespace, inputs: Sequence[Any], *, out: str | None = None
) -> None:
    """Refuse a ``--plot`` path before the work starts: one that is an input, or whose folder
    does not exist (the output folder *out* aside: it exists by the time the plot is drawn)."""
    if not args.plot:
        return
    from pathlib import Path

    from mlbalance.io import check_not_input

    check_not_input(args.plot, [p for p in inputs if p])
    parent = Path(args.plot).parent
    if not parent.is_dir() and not (out and parent.resolve() == Path(out).resolve()):
        raise ParameterError(f"plot {args.plot}: folder {parent} does not exist", param="plot")


def per_label_lines(metrics: dict[str, Any], args: argparse.Namespace, *, title: str) -> list[str]:
    """``--per-label``: the table's lines; ``--plot``: write the PNG and say so."""
    from mlbalance.per_label import format_per_label, plot_per_label

    lines = []
    if args.per_label:
        lines.append(format_per_label(metrics, title=title))
    if args.plot:
        plot_per_label(metrics, args.plot)
        lines.append(f"  wrote the per-label F1 plot {args.plot}")
    return lines


def add_table_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    text_help: str = "text column (default: text)",
) -> None:
    """``--text-column`` and ``--header-names`` (the table's layout, labels aside)."""
    parser.add_argument("--text-column", metavar="COL", help=text_help)
    parser.add_argument(
        "--header-names",
        metavar="A,B,...",
        type=comma_list,
        help="column names of a CSV/TSV file that has no header row",
    )


def add_encoding_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--encoding CODEC`` (of a CSV, TSV or JSONL input)."""
    parser.add_argument(
        "--encoding",
        metavar="CODEC",
        help="text encoding of a CSV, TSV or JSONL input, e.g. latin-1 or cp1252 (default "
        "UTF-8; a file that is not UTF-8 is refused with the line and byte)",
    )


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """``--label-column``, ``--label-sep``, ``--label-names``, ... (how labels are stored)."""
    g = parser.add_argument_group(
        "label layout",
        "Where the labels are. Default: the layout stored in files mlbalance wrote (a list "
        "column of label names), else a list column named 'labels'. Labels are read once: "
        "every file mlbalance writes holds them as one list column of names.",
    )
    g.add_argument(
        "--label-column",
        metavar="COL",
        help="label column: a list, a delimited string or label ids (default: labels)",
    )
    g.add_argument(
        "--label-sep", metavar="SEP", help="delimiter of a string label column, e.g. '|' or ','"
    )
    g.add_argument(
        "--label-names",
        metavar="FILE",
        help="file with one label name per line; integer label ids index it",
    )
    g.add_argument(
        "--label-columns",
        metavar="A,B,...",
        type=comma_list,
        help="one 0/1 column per label, comma-separated",
    )
    g.add_argument(
        "--label-prefix",
        metavar="PREFIX",
        help="every column starting with PREFIX is a 0/1 label column",
    )
    add_table_arguments(g)
    add_encoding_argument(g)
    g.add_argument(
        "--format",
        choices=("parquet", "csv", "tsv", "jsonl", "arff"),
        help="input format (default: from the file suffix)",
    )


def add_input_arguments(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """The positional INPUT plus the label layout options."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        help=help or "dataset: a Parquet file or folder of shards, CSV, TSV, JSONL or ARFF",
    )
    add_label_arguments(parser)


_LAYOUT_FLAGS = ("label_column", "label_sep", "label_names", "label_columns", "label_prefix")
_TABLE_FLAGS = ("text_column", "header_names", "encoding")


def spec_from_args(args: argparse.Namespace) -> LabelSpec | None:
    """The LabelSpec the flags ask for, or None when no label or table flag was given.

    With table flags only (``--text-column``, ``--header-names``, ``--encoding``) on a file
    mlbalance wrote, the stored label layout is kept and the table flags change the rest.
    """
    if all(getattr(args, k, None) is None for k in (*_LAYOUT_FLAGS, *_TABLE_FLAGS)):
        return None
    if getattr(args, "label_columns", None) and getattr(args, "label_prefix", None):
        raise ParameterError("give --label-columns or --label-prefix, not both")
    spec = LabelSpec(
        column=getattr(args, "label_column", None) or "labels",
        sep=getattr(args, "label_sep", None),
        names_file=getattr(args, "label_names", None),
        columns=tuple(args.label_columns) if getattr(args, "label_columns", None) else None,
        prefix=getattr(args, "label_prefix", None),
        text_column=getattr(args, "text_column", None) or "text",
        header_names=tuple(args.header_names) if getattr(args, "header_names", None) else None,
        encoding=getattr(args, "encoding", None),
    )
    if all(getattr(args, k, None) is None for k in _LAYOUT_FLAGS):
        stored = _stored_spec(getattr(args, "input", None))
        if stored is not None:
            return stored.with_table_options(spec)
    return spec


def _stored_spec(path: str | None) -> LabelSpec | None:
    """The label layout stored in a Parquet file mlbalance wrote, if *path* is one."""
    from mlbalance.errors import MlbalanceError
    from mlbalance.io import read_metadata, resolve_spec
    from mlbalance.io.readers import detect_format

    if path is None:
        return None
    try:
        if detect_format(path, None) != "parquet" or not read_metadata(path):
            return None
        return resolve_spec(path, None, None)[0]
    except MlbalanceError:
        return None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of commands that run a trained model: ``--threshold``, ``--batch-size``,
    ``--device``, ``--trust-remote-code``."""
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="one global threshold instead of the tuned ones",
    )
    parser.add_argument("--batch-size", type=int, default=128, help="rows per batch (default 128)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model folder's own Python code"
    )


def check_batch_size(args: argparse.Namespace) -> None:
    """Refuse a ``--batch-size`` below 1."""
    if args.batch_size < 1:
        raise ParameterError(f"--batch-size must be >= 1, got {args.batch_size}")


def add_output_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, help: str = "output folder"
) -> None:
    """``--out DIR`` and ``--overwrite``."""
    parser.add_argument("--out", metavar="DIR", required=required, help=help)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty output folder"
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json PATH`` (``-`` for stdout)."""
    parser.add_argument(
        "--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)"
    )


def add_seed_argument(parser: argparse.ArgumentParser, default: int = 0) -> None:
    """``--seed S``."""
    parser.add_argument(
        "--seed",
        type=int,
        default=default,
        help=f"random seed; the same seed gives the same output (default {default})",
    )


def emit_json(obj: Any, dest: str | None) -> None:
    """Write *obj* as JSON to *dest* (``-`` = stdout; a path is written atomically)."""
    if dest is None:
        return
    if dest == "-":
        json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        write_json(obj, dest)
