"""The exact cut search: each label's F1-best (or target-recall) cut and the global cut.

A cut ``v`` predicts the rows scoring ``>= v``. An F1-best cut always sits at the score of a
positive row (moving it down past a negative only adds a false positive), and so does the
highest cut reaching a target recall, so a label's candidates are the distinct scores of its
positives; the chosen cut is the highest among ties, and the threshold sits midway between it
and the next lower score of the label (half the cut when none is lower), clipped into
``[1e-12, 1 - 1e-12]``. The global cut maximises micro F1 over all labels and rows (or is the
highest reaching ``target_recall`` of all positives). Both are exact.

How, without sorting any column: one compiled pass counts every label's scores in value buckets
(:mod:`~mlbalance.thresholds._kernels`, 16 per octave). From these counts, F1 at every bucket edge
is exact and bounds the best candidate inside each bucket from above (true positives cannot
exceed those at the bucket's lower edge, predictions cannot fall below those at its upper edge
plus one), so only the buckets whose bound reaches the best edge F1 are searched exactly, in a
second pass that binary-searches their scores among the candidates they hold. Recall mode needs
neither pass: its cuts follow from the positives' scores alone. A third pass finds the next lower
score below each cut. 500 labels x 100,000 rows take well under a second (BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from mlbalance.thresholds import _kernels
from mlbalance.thresholds._kernels import N_BUCKETS, buckets

EPS = 1e-12


@dataclass
class Cuts:
    """What the search found on one set of rows.

    Attributes
    ----------
    own : numpy.ndarray of float64, shape (labels,)
        Each label's own threshold (NaN for a label without positives).
    positives : numpy.ndarray of int64, shape (labels,)
        Positives per label in these rows.
    global_threshold : float
        The single threshold for all labels.
    """

    own: np.ndarray
    positives: np.ndarray
    global_threshold: float


def midpoint(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Midway between each cut and the next lower score (half the cut where that is -inf)."""
    with np.errstate(invalid="ignore"):
        t = np.where(lower == -np.inf, upper / 2.0, (upper + lower) / 2.0)
    return np.clip(t, EPS, 1.0 - EPS)


def positive_scores(y: sp.csr_matrix, s: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(label, score)`` of every positive cell among *rows* (scores widened to float64)."""
    sub = y[rows] if rows.size != y.shape[0] else y
    local = np.repeat(np.arange(rows.size), np.diff(sub.indptr))
    return sub.indices.astype(np.int64), s[rows[local], sub.indices].astype(np.float64)


def _rev_cumsum(a: np.ndarray) -> np.ndarray:
    """Sums from each position to the end along the last axis, with a trailing 0."""
    out = np.cumsum(a[..., ::-1], axis=-1)[..., ::-1]
    pad = [(0, 0)] * (a.ndim - 1) + [(0, 1)]
    return np.pad(out, pad)


def _last_max(values: np.ndarray, segment: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per contiguous segment, the index of the last maximum of *values*."""
    best = np.maximum.reduceat(values, starts)
    idx = np.where(values == best[segment], np.arange(values.size), -1)
    return np.maximum.reduceat(idx, starts)


@dataclass
class _Candidates:
    """Distinct positive scores per label, ascending, with true positives at each."""

    value: np.ndarray
    label: np.ndarray
    tp: np.ndarray  # positives of the label scoring >= value

    @classmethod
    def build(cls, labels: np.ndarray, vals: np.ndarray) -> _Candidates:
        if labels.size == 0:
            return cls(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
        order = np.lexsort((vals, labels))
        lab, val = labels[order], vals[order]
        first = np.ones(val.size, dtype=bool)
        first[1:] = (lab[1:] != lab[:-1]) | (val[1:] != val[:-1])
        # positives >= value: from this value's first occurrence to the end of the label's run
        end_of_label = np.r_[np.flatnonzero(lab[1:] != lab[:-1]), lab.size - 1] + 1
        run_end = end_of_label[np.cumsum(np.r_[True, lab[1:] != lab[:-1]]) - 1]
        start = np.flatnonzero(first)
        return cls(val[first], lab[first], (run_end[start] - start).astype(np.int64))

    def take(self, mask: np.ndarray) -> _Candidates:
        return _Candidates(self.value[mask], self.label[mask], self.tp[mask])


def _bucket_edges() -> np.ndarray:
    """Lower value edge of every bucket, plus the upper edge of the last (exact floats)."""
    b = np.arange(1, N_BUCKETS + 1) - 1
    octave = _kernels.LOWEST_OCTAVE + b // 16
    return np.r_[0.0, np.ldexp(1.0 + (b % 16) / 16.0, octave)]


EDGES = _bucket_edges()


def _interval(hist: np.ndarray, pos_hist: np.ndarray, n_pos: np.ndarray) -> tuple[np.ndarray, ...]:
    """The bucket range that can hold a best cut: buckets whose F1 bound reaches the best F1
    at a bucket edge. Returns ``(first, last)`` bucket per row of ``hist`` (-1 when none).

    ``hist``/``pos_hist``: (rows, buckets) counts of all and of positive scores; ``n_pos``:
    (rows,) positives.
    """
    pred_ge, tp_ge = _rev_cumsum(hist), _rev_cumsum(pos_hist)
    n_pos = np.asarray(n_pos, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        edge = np.where(tp_ge[:, :-1] > 0, 2.0 * tp_ge[:, :-1] / (n_pos + pred_ge[:, :-1]), 0)
        bound = 2.0 * tp_ge[:, :-1] / (n_pos + pred_ge[:, 1:] + 1)
    ok = (pos_hist > 0) & (bound >= edge.max(axis=1, keepdims=True))
    any_ok = ok.any(axis=1)
    first = np.where(any_ok, ok.argmax(axis=1), -1)
    last = np.where(any_ok, ok.shape[1] - 1 - ok[:, ::-1].argmax(axis=1), -1)
    return first, last


def search(
    y: sp.csr_matrix, s: np.ndarray, rows: np.ndarray, mode: str, target: float | None
) -> Cuts:
    """Own cut of every label and the global cut, on the rows *rows* of *s*.

    Parameters
    ----------
    y : scipy.sparse.csr_matrix
        0/1 truth of all rows, shape (n, L).
    s : numpy.ndarray, shape (n, L)
        C-contiguous float32 or float64 scores in [0, 1].
    rows : numpy.ndarray of int64
        The rows to tune on.
    mode : {"f1", "recall"}
    target : float or None
        The target recall of ``mode="recall"``.
    """
    n_labels = s.shape[1]
    labels, vals = positive_scores(y, s, rows)
    positives = np.bincount(labels, minlength=n_labels).astype(np.int64)
    cands = _Candidates.build(labels, vals)
    pos_sorted = np.sort(vals)
    n_pos = pos_sorted.size
    tuned = positives > 0
    if mode == "f1":
        cut, lower, global_cut, global_lower = _f1_cuts(
            s, rows, labels, vals, positives, cands, pos_sorted
        )
    else:
        assert target is not None
        cut = np.full(n_labels, np.nan)
        reached = cands.tp >= target * positives[cands.label] - 1e-9 * positives[cands.label]
        idx = np.where(reached, np.arange(cands.value.size), -1)
        starts = np.r_[0, np.cumsum(np.bincount(cands.label, minlength=n_labels))][:-1][tuned]
        if starts.size:
            best = np.maximum.reduceat(idx, starts)
            cut[tuned] = cands.value[np.where(best < 0, starts, best)]
        need = int(np.ceil(target * n_pos - 1e-9 * n_pos))
        global_cut = float(pos_sorted[n_pos - max(need, 1)]) if n_pos else np.nan
        lower, global_lower = _kernels.max_below(s, rows, cut, global_cut)
    own = np.full(n_labels, np.nan)
    own[tuned] = midpoint(cut[tuned], lower[tuned])
    if n_pos == 0:
        global_t = 0.5
    else:
        global_t = float(midpoint(np.array([global_cut]), np.array([global_lower]))[0])
    return Cuts(own=own, positives=positives, global_threshold=global_t)


def _f1_cuts(
    s: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    vals: np.ndarray,
    positives: np.ndarray,
    cands: _Candidates,
    pos_sorted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """F1-best cut per label (NaN without positives) and the micro-F1-best global cut, each
    with the next lower score (``-inf`` when none)."""
    n_labels = s.shape[1]
    bits = s.view(np.int32 if s.dtype == np.float32 else np.int64)
    shift, first_key = _kernels.bucket_params(s.dtype)
    hist = np.zeros((n_labels + 1, N_BUCKETS), dtype=np.int64)
    _kernels.histograms(bits, rows, shift, first_key, hist[:n_labels])
    pos_hist = np.bincount(
        labels * N_BUCKETS + buckets(vals), minlength=(n_labels + 1) * N_BUCKETS
    ).reshape(n_labels + 1, N_BUCKETS)
    hist[n_labels], pos_hist[n_labels] = hist[:n_labels].sum(axis=0), pos_hist[:n_labels].sum(0)
    # row n_labels of the histograms is the global search: all labels pooled
    first, last = _interval(hist, pos_hist, np.r_[positives, pos_sorted.size])
    has = first >= 0
    lo = np.where(has, EDGES[np.maximum(first, 0)], np.inf)
    hi = np.where(has, EDGES[last + 1], np.inf)
    above_hi = np.where(has, _rev_cumsum(hist)[np.arange(n_labels + 1), last + 1], 0)
    b = buckets(cands.value)
    mine = cands.take((b >= first[cands.label]) & (b <= last[cands.label]))
    offsets = np.r_[0, np.cumsum(np.bincount(mine.label, minlength=n_labels))].astype(np.int64)
    global_cand = np.unique(pos_sorted[(pos_sorted >= lo[-1]) & (pos_sorted < hi[-1])])
    bins = np.zeros(mine.value.size + n_labels, dtype=np.int64)
    bin_max = np.full(bins.size, -np.inf)
    below = np.full(n_labels, -np.inf)
    global_bins = np.zeros(global_cand.size + 1, dtype=np.int64)
    global_bin_max = np.full(global_bins.size, -np.inf)
    global_below = _kernels.interval_bins(
        s, rows, lo[:-1], hi[:-1], mine.value, offsets, bins, bin_max, below,
        float(lo[-1]), float(hi[-1]), global_cand, global_bins, global_bin_max,
    )  # fmt: skip
    cut = np.full(n_labels, np.nan)
    lower = np.full(n_labels, -np.inf)
    tuned = positives > 0
    if mine.value.size:
        # rows >= candidate: rows of the interval at or above it, plus all rows above it
        slot = np.arange(mine.value.size) + mine.label
        end = offsets[mine.label + 1] + mine.label + 1
        n_pred = _rev_cumsum(bins)[slot + 1] - _rev_cumsum(bins)[end] + above_hi[mine.label]
        n_pos = positives[mine.label].astype(np.float64)
        f1 = 2.0 * mine.tp.astype(np.float64) / (n_pos + n_pred.astype(np.float64))
        segment = (np.cumsum(tuned) - 1)[mine.label]
        best = _last_max(f1, segment, offsets[:-1][tuned])
        cut[tuned] = mine.value[best]
        lower[tuned] = _next_lower(
            best - offsets[:-1][tuned], slot[best], bins, bin_max, below[tuned]
        )
    if pos_sorted.size == 0:
        return cut, lower, np.nan, -np.inf
    n_pred_g = _rev_cumsum(global_bins)[1:-1] + above_hi[-1]
    tp_g = pos_sorted.size - np.searchsorted(pos_sorted, global_cand, side="left")
    f1_g = 2.0 * tp_g.astype(np.float64) / (pos_sorted.size + n_pred_g.astype(np.float64))
    k = global_cand.size - 1 - int(np.argmax(f1_g[::-1]))
    global_lower = _next_lower(
        np.array([k]), np.array([k]), global_bins, global_bin_max, np.array([global_below])
    )[0]
    return cut, lower, float(global_cand[k]), float(global_lower)


def _next_lower(
    local: np.ndarray, slot: np.ndarray, bins: np.ndarray, bin_max: np.ndarray, below: np.ndarray
) -> np.ndarray:
    """The largest score below each chosen candidate (its bin holds everything between it and
    the candidate before; below the first candidate, the largest score under the interval)."""
    first_empty = (local == 0) & (bins[slot] == 0)
    return np.where(first_empty, below, bin_max[slot])
