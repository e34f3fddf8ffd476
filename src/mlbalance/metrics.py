"""Multilabel evaluation: micro/macro precision, recall, F1, macro mAP, head/medium/tail recall.

numpy and scipy only (no torch), so it serves the trainer, ``mlbalance evaluate`` and any
model's scores alike.

Conventions (the same as scikit-learn's, which the tests check against)
    * A label is predicted for a row when ``score >= threshold``.
    * Per label: ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
      ``F1 = 2 tp / (2 tp + fp + fn)``; a 0/0 ratio is ``zero_division`` (default 0.0, what
      scikit-learn's ``zero_division="warn"`` returns).
    * Micro scores pool the counts of all labels (labels without positives included: their
      false positives count).
    * Macro scores are the unweighted mean over labels. ``absent="exclude"`` (default) leaves out
      the labels with no positive in ``y_true`` — their recall is undefined and their precision
      and F1 can only be 0 or ``zero_division`` — and reports how many were left out; the result
      equals scikit-learn's ``precision_recall_fscore_support(..., average="macro",
      zero_division=zero_division)`` on the remaining columns. ``absent="include"`` averages over
      all labels, exactly scikit-learn's ``average="macro"``.
    * Average precision per label is scikit-learn's ``average_precision_score`` (step-wise,
      no interpolation, tied scores as one threshold); macro mAP always excludes labels without
      positives (AP is undefined there) and counts them.
    * Bucket recall: macro recall over the evaluated labels of each head/medium/tail bucket;
      buckets come from the *training* counts (:func:`mlbalance.buckets.label_buckets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance.buckets import BUCKETS, DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX, label_buckets
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "SCORES",
    "average_precision",
    "check_scores",
    "cut_curve",
    "evaluate_scores",
    "format_metrics",
    "label_columns",
    "label_csr",
    "multilabel_metrics",
    "resolve_thresholds",
]


#: The keys of :func:`multilabel_metrics` that are scores in [0, 1], higher better: what a
#: model can be selected on (``mlbalance train --metric``). Counts such as ``n_rows`` are not.
SCORES: tuple[str, ...] = (
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_map",
    "macro_recall_head",
    "macro_recall_medium",
    "macro_recall_tail",
)


# --------------------------------------------------------------------------------------------
# input checks (shared with mlbalance.thresholds)
# --------------------------------------------------------------------------------------------
def label_csr(y_true: Any) -> sp.csr_matrix:
    """``y_true`` (LabelMatrix, sparse, dense 0/1 or list of lists) as a canonical 0/1 CSR."""
    if isinstance(y_true, LabelMatrix):
        return y_true.matrix
    if (
        isinstance(y_true, np.ndarray)
        and y_true.ndim == 2
        and (y_true.dtype == bool or np.issubdtype(y_true.dtype, np.integer))
    ):
        # fast path for the dense integer matrices a trainer holds (as_label_matrix's
        # per-cell isin check is slow on millions of cells); same checks, same result
        if y_true.size and (y_true.min() < 0 or y_true.max() > 1):
            r, c = np.argwhere((y_true < 0) | (y_true > 1))[0]
            raise InputError(
                f"label array must be 0/1: row {r}, column {c} is {y_true[r, c].item()!r}"
            )
        csr = sp.csr_matrix(y_true.astype(bool, copy=False))
        return sp.csr_matrix(
            (np.ones(csr.nnz, dtype=np.uint8), csr.indices, csr.indptr), shape=csr.shape
        )
    return as_label_matrix(y_true).matrix


def check_scores(scores: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Scores as a finite 2-D float array, optionally of a given shape."""
    arr = np.asarray(scores)
    if arr.ndim != 2 or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputError(
            f"scores must be a 2-D numeric array (rows x labels), got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(f"scores have shape {arr.shape} but the labels have shape {tuple(shape)}")
    if arr.shape[0] == 0:
        raise InputError("no rows to evaluate: scores and labels are empty")
    step = max(1, (1 << 22) // max(arr.shape[1], 1))  # ~4M cells per block: bounded memory
    for start in range(0, arr.shape[0], step):
        finite = np.isfinite(arr[start : start + step])
        if not finite.all():
            r, c = np.argwhere(~finite)[0]
            raise InputError(
                f"scores row {start + r}, label column {c} is {arr[start + r, c].item()!r}; "
                "scores must be finite"
            )
    return arr


def resolve_thresholds(thresholds: Any, n_labels: int) -> np.ndarray:
    """A scalar or one threshold per label, as a float64 array of length ``n_labels``."""
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 0:
        thr = np.full(n_labels, float(thr))
    if thr.shape != (n_labels,):
        raise ParameterError(
            f"thresholds must be a scalar or one per label ({n_labels}), got shape {thr.shape}",
            param="thresholds",
        )
    if not np.isfinite(thr).all():
        raise ParameterError("thresholds must be finite", param="thresholds")
    return thr


def _positive_counts(y: sp.csr_matrix, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(support, tp)`` per label from the CSR truth and a dense boolean prediction."""
    n_labels = y.shape[1]
    rows = np.repeat(np.arange(y.shape[0]), np.diff(y.indptr))
    cols = y.indices
    support = np.bincount(cols, minlength=n_labels).astype(np.int64)
    tp = np.bincount(cols, weights=pred[rows, cols], minlength=n_labels).astype(np.int64)
    return support, tp


def _ratio(num: Any, den: Any, zero_division: float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den > 0)
    return out


# --------------------------------------------------------------------------------------------
# average precision
# --------------------------------------------------------------------------------------------
def cut_curve(
    scores: np.ndarray, positive_scores: np.ndarray, *, sorted_ascending: bool = False
) -> tuple[np.ndarray, ...]:
    """Counts at every distinct score cut of one label, from two sorts (no argsort).

    The cuts are the distinct scores in decreasing order; cut ``k`` predicts the rows scoring
    ``>= cuts[k]``. Ties form one cut, so the order among tied rows never matters.

    Parameters
    ----------
    scores : array of float, shape (n,)
        All rows' scores for the label.
    positive_scores : array of float, shape (P,)
        The scores of its positive rows.
    sorted_ascending : bool, default False
        ``scores`` is already sorted ascending (skips a sort).

    Returns
    -------
    cuts, tp, n_pred, next_lower : numpy.ndarray
        Distinct scores (descending); true positives and predicted rows at each cut (int64);
        the next lower distinct score after each cut (``nan`` after the last).
    """
    desc = (scores if sorted_ascending else np.sort(scores))[::-1]
    ends = np.r_[np.flatnonzero(desc[1:] != desc[:-1]), desc.size - 1]
    cuts = desc[ends]
    n_pred = (ends + 1).astype(np.int64)
    pos = np.sort(positive_scores)
    tp = pos.size - np.searchsorted(pos, cuts, side="left").astype(np.int64)
    next_lower = np.r_[cuts[1:].astype(np.float64), np.nan]
    return cuts, tp, n_pred, next_lower


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of one label (scikit-learn's ``average_precision_score``).

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds in decreasing order.

    Parameters
    ----------
    scores : array of float, shape (n,)
    positive : array of bool, shape (n,)
        At least one True.

    Returns
    -------
    float
    """
    scores = np.asarray(scores)
    return _ap_from_curve(*cut_curve(scores, scores[np.asarray(positive, dtype=bool)])[1:3])


def _ap_from_curve(tp: np.ndarray, n_pred: np.ndarray) -> float:
    precision = tp / n_pred.astype(np.float64)
    recall_step = np.diff(tp, prepend=0) / float(tp[-1])
    return float(np.sum(recall_step * precision))


def label_columns(scores: np.ndarray, labels: Any, block: int = 64) -> Any:
    """Yield ``(label, contiguous column)``, transposing blocks of labels (cache friendly)."""
    labels = np.asarray(labels, dtype=np.int64)
    for start in range(0, labels.size, block):
        chunk = labels[start : start + block]
        cols = np.ascontiguousarray(scores[:, chunk].T)
        yield from zip(chunk.tolist(), cols)


def _per_label_ap(y: sp.csr_matrix, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    csc = y.tocsc()
    out = np.full(y.shape[1], np.nan)
    for c, col in label_columns(scores, labels):
        rows = csc.indices[csc.indptr[c] : csc.indptr[c + 1]]
        _, tp, n_pred, _ = cut_curve(col, col[rows])
        out[c] = _ap_from_curve(tp, n_pred)
    return out


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def multilabel_metrics(
    y_true: Any,
    scores: Any,
    thresholds: Any = 0.5,
    *,
    train_counts: Any = None,
    label_names: Sequence[str] | None = None,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
    absent: str = "exclude",
    zero_division: float = 0.0,
    per_label: bool = True,
) -> dict[str, Any]:
    """Micro and macro precision/recall/F1, macro mAP, bucket recall, never-predicted labels.

    See the module docstring for the exact conventions.

    Parameters
    ----------
    y_true : LabelMatrix, scipy sparse matrix, dense 0/1 array or list of label lists
        Truth, shape ``(n, L)``.
    scores : array of float, shape (n, L)
        Probabilities (or any scores: only the thresholds give them a scale).
    thresholds : float or array of float, shape (L,), default 0.5
        Predict a label when ``score >= threshold``.
    train_counts : array of int, shape (L,), optional
        Training rows per label; gives the head/medium/tail buckets.
    label_names : sequence of str, optional
        Names for the per-label table (default: the LabelMatrix's, else ``"0"``, ``"1"``, ...).
    head_min, tail_max : int
        Bucket bounds (head: more than ``head_min`` train rows, tail: fewer than ``tail_max``).
    absent : {"exclude", "include"}, default "exclude"
        Whether labels without positives in ``y_true`` enter the macro averages.
    zero_division : float, default 0.0
        Value of a 0/0 precision, recall or F1.
    per_label : bool, default True
        Include the per-label table (a list of dicts).

    Returns
    -------
    dict
        Flat scores ``micro_precision``, ``micro_recall``, ``micro_f1``, ``macro_precision``,
        ``macro_recall``, ``macro_f1``, ``macro_map``, ``macro_recall_head``,
        ``macro_recall_medium``, ``macro_recall_tail`` (``None`` where undefined); counts
        ``n_rows``, ``n_labels``, ``n_labels_evaluated``, ``n_labels_without_positives``,
        ``n_never_predicted``; the names ``labels_without_positives`` and ``never_predicted``;
        ``buckets`` (per bucket: labels, evaluated labels, macro recall) or ``None``;
        ``conventions``; and ``per_label``. JSON-serialisable.
    """
    if absent not in ("exclude", "include"):
        raise ParameterError(
            f"absent must be 'exclude' or 'include', got {absent!r}", param="absent"
        )
    names_from_y = y_true.names if isinstance(y_true, LabelMatrix) else None
    y = label_csr(y_true)
    n_rows, n_labels = y.shape
    s = check_scores(scores, (n_rows, n_labels))
    thr = resolve_thresholds(thresholds, n_labels)
    names = list(label_names) if label_names is not None else names_from_y
    if names is None:
        names = [str(i) for i in range(n_labels)]
    if len(names) != n_labels:
        raise ParameterError(
            f"label_names has {len(names)} names for {n_labels} label columns",
            param="label_names",
        )
    buckets = None
    counts = None
    if train_counts is not None:
        counts = np.asarray(train_counts)
        if counts.shape != (n_labels,):
            raise ParameterError(
                f"train_counts must have one count per label ({n_labels}), got shape "
                f"{counts.shape}",
                param="train_counts",
            )
        buckets = label_buckets(counts, head_min=head_min, tail_max=tail_max)

    pred = s >= thr
    support, tp = _positive_counts(y, pred)
    predicted = pred.sum(axis=0).astype(np.int64)
    fp = predicted - tp
    fn = support - tp
    precision = _ratio(tp, predicted, zero_division)
    recall = _ratio(tp, support, zero_division)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, zero_division)

    has_pos = support > 0
    evaluated = has_pos if absent == "exclude" else np.ones(n_labels, dtype=bool)
    ap = _per_label_ap(y, s, np.flatnonzero(has_pos))

    TP, FP, FN = int(tp.sum()), int(fp.sum()), int(fn.sum())
    out: dict[str, Any] = {
        "n_rows": int(n_rows),
        "n_labels": int(n_labels),
        "micro_precision": float(_ratio(TP, TP + FP, zero_division)),
        "micro_recall": float(_ratio(TP, TP + FN, zero_division)),
        "micro_f1": float(_ratio(2 * TP, 2 * TP + FP + FN, zero_division)),
        "macro_precision": _mean(precision[evaluated]),
        "macro_recall": _mean(recall[evaluated]),
        "macro_f1": _mean(f1[evaluated]),
        "macro_map": _mean(ap[has_pos]),
        "macro_recall_head": None,
        "macro_recall_medium": None,
        "macro_recall_tail": None,
        "n_labels_evaluated": int(evaluated.sum()),
        "n_labels_without_positives": int((~has_pos).sum()),
        "labels_without_positives": [names[i] for i in np.flatnonzero(~has_pos)],
        "n_never_predicted": int((predicted == 0).sum()),
        "n_never_predicted_with_positives": int(((predicted == 0) & has_pos).sum()),
        "never_predicted": [names[i] for i in np.flatnonzero(predicted == 0)],
        "buckets": None,
        "conventions": {
            "predict": "score >= threshold",
            "absent": absent,
            "zero_division": float(zero_division),
            "head_min": int(head_min),
            "tail_max": int(tail_max),
        },
    }
    if buckets is not None:
        table = {}
        for b in BUCKETS:
            in_b = buckets == b
            ev = in_b & evaluated
            value = _mean(recall[ev])
            table[b] = {
                "labels": int(in_b.sum()),
                "evaluated": int(ev.sum()),
                "macro_recall": value,
            }
            out[f"macro_recall_{b}"] = value
        out["buckets"] = table
    if per_label:
        rows = []
        for i in range(n_labels):
            rows.append(
                {
                    "label": names[i],
                    "support": int(support[i]),
                    "predicted": int(predicted[i]),
                    "tp": int(tp[i]),
                    "precision": float(precision[i]),
                    "recall": float(recall[i]) if has_pos[i] else None,
                    "f1": float(f1[i]),
                    "ap": float(ap[i]) if has_pos[i] else None,
                    "threshold": float(thr[i]),
                    "train_count": int(counts[i]) if counts is not None else None,
                    "bucket": str(buckets[i]) if buckets is not None else None,
                }
            )
        out["per_label"] = rows
    return out


def format_metrics(metrics: dict[str, Any], *, title: str = "metrics") -> str:
    """A few lines summarising :func:`multilabel_metrics` output for a terminal."""

    def f(v: Any) -> str:
        return "  -  " if v is None else f"{v:.4f}"

    def _row(name: str, p: Any, r: Any, f1: Any) -> str:
        return f"  {name:6} {f(p):>9} {f(r):>8} {f(f1):>8}"

    m = metrics
    lines = [
        f"{title}: {m['n_rows']} rows, {m['n_labels']} labels "
        f"({m['n_labels_evaluated']} in macro averages, "
        f"{m['n_labels_without_positives']} without positives)",
        f"  {'':6} {'precision':>9} {'recall':>8} {'F1':>8}",
        _row("micro", m["micro_precision"], m["micro_recall"], m["micro_f1"]),
        _row("macro", m["macro_precision"], m["macro_recall"], m["macro_f1"])
        + f"   mAP {f(m['macro_map'])}",
    ]
    if m.get("buckets"):
        parts = [f"{b} {f(v['macro_recall'])} ({v['evaluated']})" for b, v in m["buckets"].items()]
        lines.append("  macro recall by train bucket: " + ", ".join(parts))
    lines.append(
        f"  never predicted: {m['n_never_predicted']} labels "
        f"({m['n_never_predicted_with_positives']} of them with positives)"
    )
    return "\n".join(lines)


def evaluate_scores(
    y_true: Any,
    scores: np.ndarray,
    thresholds: np.ndarray | float,
    *,
    names: Sequence[str],
    train_counts: np.ndarray,
    per_label: bool = True,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
) -> dict[str, Any]:
    """:func:`multilabel_metrics` of a trained model, on the labels its training data had.

    A label with no training row (a vocabulary entry the training split lacks) has no
    meaningful score: it is left out and listed under ``labels_left_out``.

    Parameters
    ----------
    y_true : scipy sparse matrix or array, shape (n, L)
        Truth in the model's label order.
    scores : numpy.ndarray, shape (n, L)
        Probabilities.
    thresholds : float or array of shape (L,)
        Cut per label (``score >= threshold``).
    names : sequence of str
        The model's labels.
    train_counts : array of int, shape (L,)
        Training rows per label (the head/medium/tail buckets).
    per_label : bool, default True
        Include the per-label table.
    head_min, tail_max : int
        Bucket bounds on the training counts (:func:`mlbalance.buckets.label_buckets`).
    """
    seen = np.asarray(train_counts) > 0
    y = y_true[:, seen].toarray() if sp.issparse(y_true) else np.asarray(y_true)[:, seen]
    thr = thresholds if np.isscalar(thresholds) else np.asarray(thresholds)[seen]
    out = dict(
        multilabel_metrics(
            np.asarray(y, dtype=np.uint8),
            scores[:, seen],
            thr,
            train_counts=np.asarray(train_counts)[seen],
            label_names=[n for n, s in zip(names, seen, strict=True) if s],
            per_label=per_label,
            head_min=head_min,
            tail_max=tail_max,
        )
    )
    left_out = [n for n, s in zip(names, seen, strict=True) if not s]
    if left_out:
        out["labels_left_out"] = left_out
    return out
