"""``mlbalance thresholds tune|apply``: per-label thresholds for any model's scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlbalance.cli._options import add_json_argument, add_label_arguments, emit_json, spec_from_args
from mlbalance.errors import MlbalanceError, ParameterError

DESCRIPTION = (
    "Tune one decision threshold per label on validation scores of any model (your own "
    "training loop, a Hugging Face Trainer, a linear model), then apply them to new scores. "
    "Scores: a Parquet file with a list column of scores (a `mlbalance predict` output works), "
    "or a 2-D .npy array."
)


def _none_or_float(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {value!r}") from None


def _add_scores(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", required=True, metavar="PATH",
                   help="scores: Parquet (file or folder) with a list column, or a 2-D .npy")  # fmt: skip
    p.add_argument("--scores-column", default="scores", metavar="COL",
                   help="the list column of a Parquet score file (default: scores)")  # fmt: skip
    p.add_argument("--score-names", metavar="FILE|A,B,..",
                   help="which label each score column is (a file with one name per line, or "
                   "a,b,c); default: the order stored with the scores, else the labels file's")  # fmt: skip


def _add_tuner(p: argparse.ArgumentParser) -> None:
    from mlbalance.thresholds import AVERAGES, FALLBACKS, GUARDS, MODES, ThresholdTuner

    # the defaults are the tuner's own: one place, so the CLI and the library cannot drift
    d = ThresholdTuner().get_params()
    g = p.add_argument_group("tuning (the ThresholdTuner parameters)")
    g.add_argument("--mode", choices=MODES, default=d["mode"],
                   help="f1: each label's F1-best cut; recall: the highest cut reaching "
                   "--target-recall (default f1)")  # fmt: skip
    g.add_argument("--target-recall", type=float, metavar="R", help="for --mode recall")
    g.add_argument("--min-positives", type=int, default=d["min_positives"], metavar="N",
                   help="labels with fewer positives fall back (default 3)")  # fmt: skip
    g.add_argument("--fallback", choices=FALLBACKS, default=d["fallback"],
                   help="what too-rare labels get: the global cut, a blend (shrink) or the "
                   "median cut of the rarest tuned labels (rare); default global")  # fmt: skip
    g.add_argument("--shrink", type=float, default=d["shrink"], metavar="K",
                   help="pseudo-count of --fallback shrink (default 3)")  # fmt: skip
    g.add_argument("--rare-k", type=int, default=d["rare_k"], metavar="K",
                   help="rarest tuned labels --fallback rare takes the median of (default 10)")  # fmt: skip
    g.add_argument("--smoothing", type=float, default=d["smoothing"], metavar="K",
                   help="pull each cut toward the global one: (P t + K t_global) / (P + K) "
                   "(default 0: off)")  # fmt: skip
    g.add_argument("--max-rate", type=_none_or_float, default=d["max_rate"], metavar="R",
                   help="firing cap: no label fires on more than R x its positives (default "
                   "10; 'none' turns it off)")  # fmt: skip
    g.add_argument("--per-label", action=argparse.BooleanOptionalAction, default=d["per_label"],
                   help="--no-per-label gives every label the global cut")  # fmt: skip
    g.add_argument("--cv", type=int, metavar="K",
                   help="cross-fit on K stratified folds of the rows: an out-of-sample estimate, "
                   "and what --average and --guard need (e.g. 5)")  # fmt: skip
    g.add_argument("--average", choices=AVERAGES, default=d["average"],
                   help="with --cv: each label's cut from all rows (refit), or the median or "
                   "mean of its fold cuts (default refit)")  # fmt: skip
    g.add_argument("--guard", choices=GUARDS, default=d["guard"],
                   help="with --cv: keep a label's own cut only where it beats the global cut "
                   "out of fold (label), or all-or-nothing (all); default off")  # fmt: skip
    g.add_argument("--micro-tolerance", type=_none_or_float, default=d["micro_tolerance"], metavar="T",
                   help="the guard keeps out-of-fold micro F1 within T of the global cut's "
                   f"(default {d['micro_tolerance']}; 'none': no check)")  # fmt: skip
    g.add_argument("--confidence", type=float, default=d["confidence"], metavar="C",
                   help="the guard's one-sided confidence that a label's own cut is better "
                   "(default 0.9)")  # fmt: skip
    g.add_argument("--calibration", choices=("temperature",),
                   help="per-label temperature scaling before the global cut, fallbacks and "
                   "smoothing (own cuts and written thresholds stay raw)")  # fmt: skip
    g.add_argument("--logits", action="store_true",
                   help="the scores are logits (thresholds are written as logits)")  # fmt: skip
    g.add_argument("--seed", dest="random_state", type=int, default=d["random_state"],
                   help="seed of the folds (default 0)")  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the ``thresholds`` command with its ``tune`` and ``apply`` sub-commands."""
    parser = subparsers.add_parser(
        "thresholds", help="tune per-label thresholds on any model's scores, or apply them",
        description=DESCRIPTION,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    tune = sub.add_parser(
        "tune", help="tune thresholds on validation scores and labels",
        description="Tune one threshold per label on validation scores and write "
        "thresholds.json (the format `mlbalance train` writes). Prints F1 at 0.5 and at the "
        "tuned thresholds on the tuning rows (in-sample, so flattering) and, with --cv, "
        "out-of-fold estimates.",
    )  # fmt: skip
    _add_scores(tune)
    tune.add_argument("--labels", required=True, metavar="PATH",
                      help="the truth of the same rows, in any layout mlbalance reads")  # fmt: skip
    add_label_arguments(tune)
    tune.add_argument("--out", required=True, metavar="FILE", help="thresholds.json to write")
    tune.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_tuner(tune)
    add_json_argument(tune)
    tune.set_defaults(func=run_tune, subparser=tune)
    apply = sub.add_parser(
        "apply", help="apply thresholds.json to scores",
        description="Write the predictions of thresholds.json on scores as Parquet: every "
        "column of a Parquet score file (or row and scores for .npy) plus predicted_labels, "
        "a list of label names per row.",
    )  # fmt: skip
    _add_scores(apply)
    apply.add_argument("--thresholds", required=True, metavar="FILE",
                       help="thresholds.json from `mlbalance thresholds tune` or `train`")  # fmt: skip
    apply.add_argument("--out", required=True, metavar="FILE", help="predictions Parquet file")
    apply.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_json_argument(apply)
    apply.set_defaults(func=run_apply, subparser=apply)


def _with_flags(args: argparse.Namespace, fn: Any) -> int:
    """Run *fn*, turning library parameter names into this sub-command's flags."""
    from mlbalance.cli import flag_message

    try:
        return int(fn(args))
    except MlbalanceError as exc:
        if not exc.params:
            raise
        raise type(exc)(flag_message(exc, args.subparser)) from None


def _check_out(args: argparse.Namespace, inputs: list[str]) -> None:
    from mlbalance.io import check_not_input

    check_not_input(args.out, inputs)
    if Path(args.out).exists() and not args.overwrite:
        raise ParameterError(f"{args.out} exists; pass overwrite=True to replace it",
                             param="overwrite")  # fmt: skip


def run_tune(args: argparse.Namespace) -> int:
    """Run ``mlbalance thresholds tune``."""
    return _with_flags(args, _tune)


def _tune(args: argparse.Namespace) -> int:
    from mlbalance.io import write_json
    from mlbalance.thresholds import ThresholdTuner
    from mlbalance.thresholds.files import labels_for_scores, read_names, read_scores
    from mlbalance.thresholds.report import tune_report

    _check_out(args, [args.scores, args.labels])
    names = ["mode", "target_recall", "min_positives", "fallback", "shrink", "rare_k",
             "smoothing", "max_rate", "per_label", "cv", "average", "guard", "micro_tolerance",
             "confidence", "calibration", "logits", "random_state"]  # fmt: skip
    tuner = ThresholdTuner(**{k: getattr(args, k) for k in names})
    scores = read_scores(args.scores, column=args.scores_column)
    score_names = read_names(args.score_names) if args.score_names else None
    y, label_names = labels_for_scores(scores, args.labels, spec_from_args(args), score_names)
    tuner.fit(_checked(scores.values, scores.source, tuner.logits), y)
    doc = tuner.to_json(label_names)
    write_json(doc, args.out)
    report = tune_report(tuner, scores.values, y, label_names)
    stream = sys.stderr if args.json == "-" else sys.stdout
    print(report.pop("summary"), file=stream)
    print(f"wrote {args.out}", file=stream)
    emit_json({**report, "out": Path(args.out).name, "thresholds": doc}, args.json)
    return 0


def _checked(values: Any, source: str, logits: bool) -> Any:
    """Scores with the file named in any error about them."""
    from mlbalance.errors import InputError
    from mlbalance.metrics import check_scores

    try:
        s = check_scores(values)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    if not logits and (float(s.min()) < 0.0 or float(s.max()) > 1.0):
        raise InputError(
            f"{source}: scores run from {float(s.min()):.4g} to {float(s.max()):.4g}, outside "
            "[0, 1]; if they are logits, pass --logits"
        )
    return s


def run_apply(args: argparse.Namespace) -> int:
    """Run ``mlbalance thresholds apply``."""
    return _with_flags(args, _apply)


def _apply(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from mlbalance.errors import InputError
    from mlbalance.thresholds import ThresholdTuner
    from mlbalance.thresholds.files import read_names, read_scores, write_predictions

    _check_out(args, [args.scores, args.thresholds])
    try:
        doc = json.loads(Path(args.thresholds).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.thresholds}: cannot read thresholds ({exc})") from None
    scores = read_scores(args.scores, column=args.scores_column)
    names = read_names(args.score_names) if args.score_names else scores.names
    note = None
    try:
        tuner = ThresholdTuner.from_json(doc, names)
    except InputError as exc:
        raise InputError(f"{args.thresholds}: {exc}") from None
    if names is None:
        names = list(tuner.label_names_ or ())
        note = f"score columns taken in the label order of {args.thresholds}"
    if len(names) != scores.values.shape[1]:
        raise InputError(
            f"{scores.source} has {scores.values.shape[1]} score columns but {args.thresholds} "
            f"has {len(names)} labels"
        )
    s = _checked(scores.values, scores.source, tuner.logits)
    hits = np.asarray(tuner.predict(s), dtype=bool)
    write_predictions(args.out, scores, hits, list(names), tuner.thresholds_)
    per_row = hits.sum(axis=1)
    never = [names[j] for j in np.flatnonzero(~hits.any(axis=0))]
    report = {
        "rows": int(hits.shape[0]),
        "labels": len(names),
        "mean_labels_per_row": float(per_row.mean()) if hits.shape[0] else 0.0,
        "rows_without_labels": int((per_row == 0).sum()),
        "labels_never_predicted": never,
        "out": Path(args.out).name,
    }
    stream = sys.stderr if args.json == "-" else sys.stdout
    print(f"mlbalance thresholds apply — {report['rows']:,} rows x {len(names)} labels of "
          f"{args.scores} with {args.thresholds}", file=stream)  # fmt: skip
    if note:
        print(f"  {note}", file=stream)
    print(f"  {report['mean_labels_per_row']:.2f} labels per row; {report['rows_without_labels']:,}"
          f" rows without a label; {len(never)} labels never predicted", file=stream)  # fmt: skip
    print(f"wrote {args.out}", file=stream)
    emit_json(report, args.json)
    return 0
