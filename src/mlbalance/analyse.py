"""The ``analyse`` report: every imbalance measure of a label matrix, its summary and plots.

:func:`analyse` returns a JSON-ready dict (the measures of :mod:`mlbalance.measures`, the
head / medium / tail buckets of :func:`mlbalance.buckets.label_buckets`, the top co-occurring
label pairs, and the labels too rare to reach every part of a split); :func:`format_summary`
renders it on one screen, ending with a plain-language reading; :func:`plot_report` draws
the long-tail curve and a co-occurrence heatmap (matplotlib, imported only there).

The reading and its advice (what the data calls for: per-label thresholds, a sampler, ML-ROS,
REMEDIAL, or first the labels too rare to split) are :mod:`mlbalance._reading`, each rule
grounded in Charte et al. (Neurocomputing 163, 2015, and 326, 2019) or the project's recipe
study (BENCHMARKS.md); the report carries the advice as ``advice``.
"""

from __future__ import annotations

import csv
import math
import os
import textwrap
from typing import Any

import numpy as np

from mlbalance._reading import advice as _advice
from mlbalance._reading import reading as _reading
from mlbalance.buckets import BUCKETS, DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX, label_buckets
from mlbalance.errors import ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix
from mlbalance.measures import (
    compute_measures,
    cooccurrence,
    rare_for_folds,
    rare_for_test,
)
from mlbalance.measures import top_pairs as _top_pairs

__all__ = ["analyse", "format_summary", "plot_report", "write_per_label_csv"]

PER_LABEL_FIELDS = (
    "label",
    "count",
    "frequency",
    "irlbl",
    "scumble",
    "scumble_cv",
    "bucket",
    "minority",
)


def _num(x: float) -> float | None:
    """A float for JSON: NaN and infinities become None (null)."""
    x = float(x)
    return x if math.isfinite(x) else None


def analyse(
    y: Any,
    *,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
    folds: int = 5,
    test_size: float = 0.1,
    top_pairs: int = 20,
    n_features: int | None = None,
) -> dict[str, Any]:
    """Measure a multilabel dataset: the report behind ``mlbalance analyse``.

    Parameters
    ----------
    y : LabelMatrix, io.Dataset or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The labels.
    head_min, tail_max : int
        Bucket bounds: head labels have more than ``head_min`` rows, tail labels fewer than
        ``tail_max`` (defaults 100 and 20).
    folds : int, default 5
        For the "too rare for k-fold" check: a label needs at least ``folds`` rows to appear
        in every fold's test part.
    test_size : float, default 0.1
        For the "too rare for a train/test split" check: a proportional (stratified) share
        of the test part is ``count * test_size`` rows, so a label with
        ``count * test_size < 1`` (or ``count * (1 - test_size) < 1``) gets no row there
        unless the splitter spreads rare labels on purpose (``mlbalance split`` does, for
        labels with at least two rows); ``splits.single_row`` lists labels that cannot be on
        both sides at all.
    top_pairs : int, default 20
        How many co-occurring label pairs to list.
    n_features : int, optional
        Number of input features, for TCS (known for ARFF data; ``None`` for text).

    Returns
    -------
    dict
        JSON-ready (NaN and inf are None). Top-level keys: ``rows``, ``labels``,
        ``rows_without_labels``, ``absent_labels``, ``cardinality``, ``density``, ``mean_ir``,
        ``max_ir``, ``cvir``, ``scumble``, ``scumble_cv``, ``tcs``, ``n_features``,
        ``labelsets`` (``distinct``, ``single``, ``max_frequency``), ``buckets``,
        ``minority_labels``, ``top_pairs``, ``splits``, ``per_label`` (one object per label
        in vocabulary order with ``label``, ``count``, ``frequency``, ``irlbl``, ``scumble``,
        ``scumble_cv``, ``bucket``, ``minority``) and ``advice`` (``[{"rule", "text"}]``:
        what the data calls for, see :func:`mlbalance._reading.advice`).
    """
    if int(top_pairs) < 0:
        raise ParameterError(f"top_pairs must be >= 0, got {top_pairs}", param="top_pairs")
    if isinstance(getattr(y, "labels", None), LabelMatrix):  # an io.Dataset
        y = y.labels
    lm = as_label_matrix(y)
    m = compute_measures(lm, n_features=n_features)
    buckets = label_buckets(m.counts, head_min=head_min, tail_max=tail_max)
    names = lm.names
    fold_rare = rare_for_folds(m.counts, folds)
    test_rare = rare_for_test(m.counts, test_size)
    absent = m.counts == 0
    pairs = _top_pairs(lm, top_pairs) if top_pairs else []  # memory bounded by the data
    per_label = [
        {
            "label": names[i],
            "count": int(m.counts[i]),
            "frequency": float(m.frequency[i]),
            "irlbl": _num(m.irlbl[i]),
            "scumble": float(m.label_scumble[i]),
            "scumble_cv": _num(m.label_scumble_cv[i]),
            "bucket": str(buckets[i]),
            "minority": bool(m.minority[i]),
        }
        for i in range(lm.n_labels)
    ]

    def rare_names(mask: np.ndarray) -> list[str]:
        idx = np.flatnonzero(mask)
        return [names[i] for i in idx[np.argsort(m.counts[idx], kind="stable")]]

    report: dict[str, Any] = {
        "rows": m.rows,
        "labels": m.labels,
        "rows_without_labels": m.rows_without_labels,
        "absent_labels": int(absent.sum()),
        "cardinality": m.cardinality,
        "density": m.density,
        "mean_ir": _num(m.mean_ir),
        "max_ir": _num(m.max_ir),
        "cvir": _num(m.cvir),
        "scumble": m.scumble,
        "scumble_cv": m.scumble_cv,
        "tcs": _num(m.tcs),
        "n_features": n_features,
        "labelsets": {
            "distinct": m.labelsets.distinct,
            "single": m.labelsets.single,
            "max_frequency": m.labelsets.max_frequency,
        },
        "buckets": {
            "head_min": int(head_min),
            "tail_max": int(tail_max),
            **{b: int(np.count_nonzero(buckets == b)) for b in BUCKETS},
        },
        "minority_labels": int(m.minority.sum()),
        "top_pairs": [
            {
                "labels": [names[i], names[j]],
                "rows": n,
                "jaccard": n / float(m.counts[i] + m.counts[j] - n),
            }
            for i, j, n in pairs
        ],
        "splits": {
            "folds": int(folds),
            "test_size": float(test_size),
            "absent": rare_names(absent),
            "rare_for_folds": rare_names(fold_rare & ~absent),
            "rare_for_test": rare_names(test_rare & ~absent),
            "single_row": rare_names(m.counts == 1),
        },
        "per_label": per_label,
    }
    report["advice"] = _advice(report)
    return report


# --------------------------------------------------------------------------------------------
# text summary
# --------------------------------------------------------------------------------------------
def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:,.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}g}"


def _fit(prefix: str, items: list[str], width: int = 100) -> str:
    """``prefix`` and as many comma-separated *items* as fit in *width* columns (at least one)."""
    line = prefix + items[0] if items else prefix
    for item in items[1:]:
        if len(line) + 2 + len(item) > width:
            return line + ", …"
        line += ", " + item
    return line


def format_summary(report: dict[str, Any], *, source: str | None = None, top: int = 5) -> str:
    """Render an :func:`analyse` report on one screen, ending with a plain-language reading.

    Parameters
    ----------
    report : dict
        From :func:`analyse`.
    source : str, optional
        Name of the input, for the title line.
    top : int, default 5
        How many of the most frequent and rarest labels and top pairs to show.
    """
    r = report
    b = r["buckets"]
    ls = r["labelsets"]
    n = r["rows"]
    per = sorted(r["per_label"], key=lambda p: (-p["count"], p["label"]))
    empty_pct = 100.0 * r["rows_without_labels"] / n if n else 0.0
    tcs_note = "" if r.get("n_features") else " (labels x labelsets; no feature count)"
    out = [
        f"mlbalance analyse{' — ' + source if source else ''}",
        f"rows          {n:,}   labels {r['labels']:,}   rows without labels "
        f"{r['rows_without_labels']:,} ({empty_pct:.1f}%)",
        f"cardinality   {r['cardinality']:.4f}   density {_fmt(r['density'])}",
        f"labelsets     {ls['distinct']:,} distinct, {ls['single']:,} on one row only, "
        f"largest on {ls['max_frequency']:,} rows",
        f"imbalance     MeanIR {_fmt(r['mean_ir'])}   MaxIR {_fmt(r['max_ir'])}   "
        f"CVIR {_fmt(r['cvir'])}",
        f"concurrence   SCUMBLE {_fmt(r['scumble'])} (CV {_fmt(r['scumble_cv'])})   "
        f"TCS {_fmt(r['tcs'])}{tcs_note}",
        f"buckets       head (>{b['head_min']} rows) {b['head']}   medium "
        f"({b['tail_max']}-{b['head_min']}) {b['medium']}   tail (<{b['tail_max']}) {b['tail']}"
        f"   minority (IRLbl > MeanIR) {r['minority_labels']}",
    ]
    if per:
        out.append(_fit("most frequent ", [f"{p['label']} {p['count']:,}" for p in per[:top]]))
        rare = [p for p in reversed(per) if p["count"] > 0][:top]
        out.append(_fit("rarest        ", [f"{p['label']} {p['count']:,}" for p in rare]))
    if r["top_pairs"]:
        out.append(
            _fit(
                "top pairs     ",
                [f"{a}+{c} {p['rows']:,}" for p in r["top_pairs"][:top] for a, c in [p["labels"]]],
            )
        )
    out.append("")
    out.append("Reading:")
    for line in _reading(r):
        out.append(
            textwrap.fill(
                line,
                width=100,
                initial_indent="  ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# files: per-label CSV, plot
# --------------------------------------------------------------------------------------------
def write_per_label_csv(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``report["per_label"]`` as CSV (one row per label), atomically."""
    from mlbalance.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(PER_LABEL_FIELDS)
        for p in report["per_label"]:
            w.writerow(["" if p[k] is None else p[k] for k in PER_LABEL_FIELDS])


def plot_report(
    report: dict[str, Any], y: Any, path: str | os.PathLike[str], *, heatmap_labels: int = 25
) -> None:
    """Save the long-tail curve and a co-occurrence heatmap of the top labels as a PNG.

    Left: label counts sorted from most to least frequent, on a log scale, with the bucket
    bounds. Right: rows shared by each pair of the ``heatmap_labels`` most frequent labels
    (log colour scale; the diagonal is left blank).

    Parameters
    ----------
    report : dict
        From :func:`analyse` on the same labels.
    y : LabelMatrix or array-like
        The labels (for the co-occurrence of the top labels).
    path : path-like
        The PNG to write (atomically).
    heatmap_labels : int, default 25
        How many of the most frequent labels the heatmap shows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from mlbalance.io import atomic_path

    lm = as_label_matrix(y)
    counts = np.array([p["count"] for p in report["per_label"]], dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    b = report["buckets"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.2, 1]})
    ranks = np.arange(1, counts.size + 1)
    shown = np.maximum(counts[order], 0.8)  # a label with 0 rows sits just under 1
    ax1.plot(ranks, shown, lw=1.6, color="#1f77b4")
    ax1.set_yscale("log")
    ax1.axhline(
        b["head_min"],
        color="#2ca02c",
        ls="--",
        lw=1,
        label=f"head > {b['head_min']} rows ({b['head']} labels)",
    )
    ax1.axhline(
        b["tail_max"],
        color="#d62728",
        ls="--",
        lw=1,
        label=f"tail < {b['tail_max']} rows ({b['tail']} labels)",
    )
    ax1.set_xlabel("label rank (most to least frequent)")
    ax1.set_ylabel("rows with the label (log)")
    ax1.set_title(
        f"Long tail: {report['rows']:,} rows, {report['labels']} labels, "
        f"MeanIR {_fmt(report['mean_ir'], 3)}"
    )
    ax1.legend(loc="upper right", fontsize=9)
    ax1.grid(True, which="both", alpha=0.25)

    top = order[: max(1, min(heatmap_labels, counts.size))]
    sub_names = [lm.names[i] for i in top]
    co = cooccurrence(lm, top).toarray().astype(np.float64)
    np.fill_diagonal(co, 0.0)  # the counts are on the left; pairs show better without them
    masked = np.ma.masked_less_equal(co, 0)
    vmax = max(float(co.max()), 1.0)
    im = ax2.imshow(masked, cmap="viridis", norm=LogNorm(vmin=1, vmax=vmax))
    ticks = np.arange(top.size)
    labels = [s if len(s) <= 14 else s[:13] + "…" for s in sub_names]
    ax2.set_xticks(ticks, labels, rotation=90, fontsize=7)
    ax2.set_yticks(ticks, labels, fontsize=7)
    ax2.set_title(f"Rows shared by the {top.size} most frequent labels")
    fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
