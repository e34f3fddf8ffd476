"""``mlbalance resample``: balanced Parquet shards by ML-ROS, ML-RUS, MLSMOTE, REMEDIAL or target counts."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from mlbalance.cli._options import (
    add_input_arguments,
    add_json_argument,
    add_output_arguments,
    add_seed_argument,
    comma_list,
    emit_json,
    spec_from_args,
)

METHOD_NAMES = ("ml-ros", "ml-rus", "mlsmote", "remedial", "target")


def add_method_arguments(p: argparse.ArgumentParser) -> None:
    """``--method`` and the parameters of each method (shared with ``prepare``)."""
    g = p.add_argument_group("resampling")
    g.add_argument(
        "--method",
        required=True,
        choices=METHOD_NAMES,
        help="ml-ros / ml-rus: random over/undersampling of label bags (Charte 2015); "
        "mlsmote: synthetic rows from an embedding column (Charte 2015); remedial: "
        "split rows mixing rare and frequent labels (Charte 2019); target: raise "
        "labels to --min-rows and/or cap them at --max-rows",
    )
    g.add_argument(
        "--percentage",
        type=float,
        metavar="P",
        help="ml-ros/ml-rus: rows to add/delete as %% of the input (default 25)",
    )
    g.add_argument(
        "--k",
        type=int,
        metavar="K",
        dest="k_neighbors",
        help="mlsmote: nearest neighbours within each label's bag (default 5)",
    )
    g.add_argument(
        "--label-generation",
        choices=("ranking", "union", "intersection"),
        help="mlsmote: labels of a synthetic row (default ranking)",
    )
    feats = g.add_mutually_exclusive_group()
    feats.add_argument(
        "--features",
        dest="embedding_column",
        metavar="COL",
        help="mlsmote: a list column of numbers to interpolate (default embedding, see "
        "`mlbalance embed`; for a MULAN ARFF input, its features)",
    )
    feats.add_argument(
        "--feature-columns",
        type=comma_list,
        metavar="A,B,...",
        help="mlsmote: numeric columns, one feature each (tabular data)",
    )
    feats.add_argument(
        "--feature-prefix",
        metavar="PREFIX",
        help="mlsmote: every column whose name starts with PREFIX is a numeric feature",
    )
    g.add_argument("--min-rows", type=int, metavar="N", help="target: raise every label to N rows")
    g.add_argument("--max-rows", type=int, metavar="M", help="target: cap labels at M rows")
    g.add_argument(
        "--max-copies",
        type=int,
        metavar="C",
        help="target: most extra copies of one row (default 10)",
    )
    g.add_argument(
        "--rows-per-shard",
        type=int,
        default=500_000,
        metavar="N",
        help="most rows per output shard (default 500000)",
    )


def features_from_args(args: argparse.Namespace) -> Any:
    """MLSMOTE's :class:`~mlbalance.io.features.FeatureSpec` from the feature flags."""
    from mlbalance.errors import ParameterError
    from mlbalance.io.features import FeatureSpec

    given = [
        flag
        for flag, key in (
            ("--features", "embedding_column"),
            ("--feature-columns", "feature_columns"),
            ("--feature-prefix", "feature_prefix"),
        )
        if getattr(args, key, None) is not None
    ]
    if given and args.method != "mlsmote":
        raise ParameterError(f"--method {args.method} does not use {', '.join(given)}")
    return FeatureSpec(
        embedding_column=args.embedding_column,
        feature_columns=tuple(args.feature_columns) if args.feature_columns else None,
        feature_prefix=args.feature_prefix,
    )


def resampler_from_args(args: argparse.Namespace) -> Any:
    """The resampler the flags ask for; a flag of another method is refused, not ignored."""
    from mlbalance.errors import ParameterError
    from mlbalance.resample import METHODS
    from mlbalance.resample.dataset import make_resampler

    def options(cls: Any) -> set[str]:
        return set(cls._parameter_constraints) - {"random_state"}

    own = options(METHODS[args.method])
    others = set().union(*(options(cls) for cls in METHODS.values())) - own
    stray = sorted(p for p in others if getattr(args, p, None) is not None)
    if stray:  # library names; main() shows them as the flags typed (--k, --min-rows, ...)
        raise ParameterError(
            f"method {args.method} does not use {', '.join(stray)}", param=("method", *stray)
        )
    params = {p: getattr(args, p, None) for p in sorted(own)}
    return make_resampler(args.method, **params, random_state=args.seed)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resample",
        help="write balanced Parquet shards (ML-ROS, ML-RUS, MLSMOTE, REMEDIAL, target counts)",
        description="Resample a training set and write it as Parquet shards "
        "part-00000-of-000NN.parquet with every input column (the labels as one list column of "
        "label names), plus __mlbalance__/manifest.json (label "
        "vocabulary, method, parameters, seed, label counts and imbalance measures before and "
        "after, sha256 per shard). Row-based methods decide from the label column alone and copy "
        "rows (text included) shard by shard. Resample training data only: never val/test.",
    )
    add_input_arguments(p)
    add_method_arguments(p)
    add_output_arguments(p, help="output folder for the shards and __mlbalance__/manifest.json")
    add_seed_argument(p)
    add_json_argument(p)
    p.set_defaults(func=run)


def warn_if_evaluation(path: str) -> None:
    """Print a warning when *path* looks like validation or test data."""
    from mlbalance.resample.dataset import looks_like_evaluation

    if looks_like_evaluation(path):
        print(
            f"mlbalance: warning: {path} looks like evaluation data (val/dev/test); "
            "resampling it corrupts the metrics, resample the training split only",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from mlbalance.resample.dataset import resample_dataset

    warn_if_evaluation(args.input)
    resampler = resampler_from_args(args)
    outcome = resample_dataset(
        args.input,
        args.out,
        resampler,
        method=args.method,
        spec=spec_from_args(args),
        format=args.format,
        rows_per_shard=args.rows_per_shard,
        overwrite=args.overwrite,
        features=features_from_args(args),
        progress=None,
    )
    # With --json - the JSON owns stdout; the summary goes to stderr.
    stream = sys.stderr if args.json == "-" else sys.stdout
    if outcome.nothing_to_do:
        print(outcome.nothing_to_do + f"; {args.out} not written", file=stream)
        emit_json({"nothing_to_do": outcome.nothing_to_do, "input": args.input}, args.json)
        return 0
    manifest = outcome.manifest
    assert manifest is not None
    print(summary(manifest, args.out), file=stream)
    emit_json(manifest, args.json)
    return 0


def summary(manifest: dict[str, Any], out: str) -> str:
    """A one-screen text summary of a manifest, ending with what the method did other than
    asked (its notes) and the measures it made worse."""
    rep = manifest["report"]
    b, a = manifest["measures_before"], manifest["measures_after"]
    before = manifest["label_counts_before"]
    after = manifest["label_counts_after"]
    names = sorted(before, key=lambda n: before[n])
    worse = rep.get("worse", {})
    lines = [
        f"{manifest['method']} -> {out}: {rep['input_rows']:,} rows in, "
        f"{rep['output_rows']:,} rows out in {len(manifest['shards'])} shard(s)",
        f"  kept {rep['kept']:,}  dropped {rep['dropped']:,}  extra copies "
        f"{rep['extra_copies']:,}  synthetic (new rows) {rep['synthetic']:,}  relabelled "
        f"(kept rows or copies with changed labels) {rep['relabelled']:,}",
        f"  {'measure':<10}{'before':>12}{'after':>12}",
    ]
    for key in ("mean_ir", "max_ir", "cvir", "scumble"):
        flag = "  worse" if key in worse else ""
        lines.append(f"  {key:<10}{b[key]:>12.4g}{a[key]:>12.4g}{flag}")
    lines.append("  rarest labels (rows before -> after):")
    for n in names[:5]:
        lines.append(f"    {n[:40]:<40}{before[n]:>10,} -> {after[n]:,}")
    for note in rep.get("notes", []):
        lines.extend(textwrap.wrap(note, width=100, initial_indent="  note: ",
                                   subsequent_indent="    "))  # fmt: skip
    lines.append(
        f"  manifest: {out}/__mlbalance__/manifest.json  (check with: mlbalance verify {out})"
    )
    return "\n".join(lines)
