"""Cross-fitting on the tuning rows: out-of-fold estimates, bagged cuts and the guard.

A threshold tuned on a few hundred rows fits their noise: in-sample it always looks better than
0.5 or one global cut, because it was chosen there. Lin and Lin (CIKM 2023, "On the thresholding
strategy for infrequent labels in multi-label classification") explain why tuning the F-measure
of an infrequent label over-fits and why LibMultiLabel's SCutFBR (Fan and Lin 2007) — tune on
k - 1 folds, average the folds' cuts, fall back to a safe cut where the tuned one did not earn
its place — helps. Here the model is fixed (its scores are given), so the folds split the
tuning rows only:

* **out-of-fold estimate**: for each of ``k`` folds (iterative stratification, so every label
  with ``>= k`` positives is in every fold), the whole tuning procedure runs on the other
  folds and its thresholds (and its global cut) are applied to the held-out fold; summing the
  held-out counts gives, per label, true positives and predictions of the per-label cuts and of
  the global cut on rows they were not tuned on. The folds tune labels with
  ``min_positives * (k - 1) // k`` positives (2 for the default 3 and 5 folds): with the full
  ``min_positives`` a label just tunable on all rows would fall back in most folds, and the
  estimate would never credit its own cut;
* **bagged cuts** (``average="median"`` or ``"mean"``): each label's own cut is the median or
  mean of its ``k`` fold cuts (SCutFBR averages fold cuts; bagging a noisy arg-max reduces its
  variance — Breiman 1996, Bühlmann and Yu 2002). We do *not* offer "the cut maximising the
  summed out-of-fold F1": with a fixed model that objective is the F1 of all tuning rows again
  (every candidate cut is scored on every row), so it over-fits exactly as plain tuning does;
* **the guard**: the global cut is the default, and labels keep their own cuts only where the
  held-out rows give evidence that they are better — evidence, not a larger point estimate:
  picking per label whichever of two noisy estimates is larger keeps many cuts that only won by
  chance (a winner's curse; measured in BENCHMARKS.md). ``guard="group"`` pools labels of
  similar frequency (1, 2-3, 4-7, ... positives) and keeps a group's own cuts where the mean of
  its labels' out-of-fold F1 gains is positive with one-sided ``confidence`` (a paired test
  with labels as replicates: the global cut tends to be wrong for a whole group in the same
  way). ``guard="label"`` tests each label alone: out of fold its own cut predicts ``d`` more
  rows than the global cut (or fewer) with ``e`` more true positives among them, and it has the
  higher F1 exactly when the precision ``e / d`` of those rows is above (when ``d > 0``; below
  when ``d < 0``) half the global cut's F1 — the marginal precision rule of Lipton, Elkan and
  Naryanaswamy (2014, "Optimal thresholding of classifiers to maximize F1 measure"); the guard
  asks it of the one-sided Wilson bound. Then, while the out-of-fold micro F1 of the mix is more
  than ``micro_tolerance`` below that of the global cut alone, the label whose reversion buys
  the most micro F1 per macro F1 lost goes back to the global cut. ``guard="all"``: all labels
  keep their own cuts only if out of fold they beat the global cut on macro F1 and stay within
  ``micro_tolerance`` of it on micro F1. Weighing macro gains against micro losses follows Lin
  and Lin's joint micro/macro objective and the mixed utilities of xCOLUMNs (Schultheis et al.
  2024, "Generalized test utilities for long-tail performance in extreme multi-label
  classification").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance.thresholds import _kernels
from mlbalance.thresholds._search import positive_scores


@dataclass
class Counts:
    """Out-of-fold true positives and predictions per label, for one way of choosing cuts."""

    tp: np.ndarray
    pred: np.ndarray

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.pred + other.pred)


def fold_ids(y: sp.csr_matrix, k: int, random_state: Any) -> np.ndarray:
    """Fold id per row: iterative stratification into *k* equal folds, rows shuffled."""
    from mlbalance.split import iterative_stratification

    return iterative_stratification(y, k, shuffle=True, random_state=random_state)


def held_out_counts(
    y: sp.csr_matrix, s: np.ndarray, rows: np.ndarray, thresholds: np.ndarray
) -> Counts:
    """True positives and predictions per label of *thresholds* on the rows *rows*."""
    labels, vals = positive_scores(y, s, rows)
    hit = vals >= thresholds[labels]
    tp = np.bincount(labels[hit], minlength=s.shape[1]).astype(np.int64)
    return Counts(tp=tp, pred=_kernels.count_at_least(s, rows, thresholds))


def f1(counts: Counts, positives: np.ndarray) -> np.ndarray:
    """Per-label F1 ``2 tp / (P + predicted)`` (0 when both are 0)."""
    den = positives + counts.pred
    return np.divide(2.0 * counts.tp, den, out=np.zeros(den.size), where=den > 0)


def micro_f1(counts: Counts, positives: np.ndarray) -> float:
    den = int(positives.sum() + counts.pred.sum())
    return 2.0 * int(counts.tp.sum()) / den if den else 0.0


def macro_f1(counts: Counts, positives: np.ndarray) -> float | None:
    has = positives > 0
    return float(f1(counts, positives)[has].mean()) if has.any() else None


def scores(counts: Counts, positives: np.ndarray) -> dict[str, float | None]:
    return {
        "micro_f1": micro_f1(counts, positives),
        "macro_f1": macro_f1(counts, positives),
    }


def _mix(own: Counts, glob: Counts, keep: np.ndarray) -> Counts:
    return Counts(np.where(keep, own.tp, glob.tp), np.where(keep, own.pred, glob.pred))


def wilson(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval ``(lower, upper)`` of a proportion ``k / n`` (n > 0)."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = (k + z * z / 2) / (n + z * z)
        half = z * np.sqrt(np.maximum(k * (n - k) / n, 0) + z * z / 4) / (n + z * z)
    return center - half, center + half


def earns_its_place(
    own: Counts, glob: Counts, positives: np.ndarray, confidence: float
) -> np.ndarray:
    """Labels whose own cut beats the global cut out of fold with one-sided *confidence*."""
    from scipy.stats import norm

    z = float(norm.ppf(confidence))
    d_pred = own.pred - glob.pred
    d_tp = np.clip(own.tp - glob.tp, np.minimum(d_pred, 0), np.maximum(d_pred, 0))
    half_f1 = f1(glob, positives) / 2
    lower, upper = wilson(np.abs(d_tp), np.abs(d_pred), z)
    more = (d_pred > 0) & (lower > half_f1)  # the extra rows are precise enough to add
    fewer = (d_pred < 0) & (upper < half_f1)  # the rows left out were too imprecise to keep
    same = (d_pred == 0) & (own.tp > glob.tp)
    return more | fewer | same


def frequency_groups(positives: np.ndarray) -> np.ndarray:
    """Group id per label by its positives: 0 for none, then 1, 2-3, 4-7, 8-15, ..."""
    return np.where(positives > 0, np.floor(np.log2(np.maximum(positives, 1))) + 1, 0).astype(int)


def groups_earn_their_place(
    own: Counts, glob: Counts, positives: np.ndarray, confidence: float
) -> np.ndarray:
    """Labels of the frequency groups whose own cuts beat the global cut out of fold.

    Per group, the labels' out-of-fold F1 gains ``d = F1_own - F1_global`` are paired
    replicates: the group keeps its own cuts when ``mean(d) - z SE(d) > 0`` (one-sided
    ``confidence``). Pooling labels of similar frequency gives the test the power a single rare
    label lacks, where the global cut is wrong for a whole group in the same way (rare labels
    scored low by a model that saw few of them). A group of one label is judged by
    :func:`earns_its_place`; labels without positives keep the cut that predicts fewer rows.
    """
    from scipy.stats import norm

    z = float(norm.ppf(confidence))
    gain = f1(own, positives) - f1(glob, positives)
    group = frequency_groups(positives)
    keep = np.zeros(positives.size, dtype=bool)
    alone = earns_its_place(own, glob, positives, confidence)
    for g in np.unique(group):
        members = group == g
        if g == 0:
            keep[members] = own.pred[members] < glob.pred[members]
            continue
        d = gain[members]
        if d.size == 1:
            keep[members] = alone[members]
            continue
        se = d.std(ddof=1) / np.sqrt(d.size)
        keep[members] = d.mean() - z * se > 0
    return keep


def _revert_for_micro(
    keep: np.ndarray, own: Counts, glob: Counts, positives: np.ndarray, tol: float
) -> int:
    """Revert labels (most micro F1 bought per macro F1 lost first) until the mix's micro F1
    is within *tol* of the global cut's; returns how many were reverted."""
    f_gain = f1(own, positives) - f1(glob, positives)
    micro_glob = micro_f1(glob, positives)
    n_eval = max(int((positives > 0).sum()), 1)
    reverted = 0
    while keep.any():
        mix = _mix(own, glob, keep)
        micro = micro_f1(mix, positives)
        if micro >= micro_glob - tol:
            break
        tp, den = int(mix.tp.sum()), int(positives.sum() + mix.pred.sum())
        d_tp = (glob.tp - own.tp).astype(np.float64)
        d_den = (glob.pred - own.pred).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 2.0 * (tp + d_tp) / (den + d_den) - micro
        loss = np.maximum(f_gain, 0.0) / n_eval
        ratio = np.where(keep & (gain > 0), gain / np.maximum(loss, 1e-12), -np.inf)
        c = int(np.argmax(ratio))
        if ratio[c] == -np.inf:
            break
        keep[c] = False
        reverted += 1
    return reverted


def decide(
    own: Counts,
    glob: Counts,
    positives: np.ndarray,
    guard: str,
    micro_tolerance: float | None,
    confidence: float = 0.9,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Which labels keep their own cut, and what was decided on which estimate."""
    tol = np.inf if micro_tolerance is None else float(micro_tolerance)
    n_labels = positives.size
    if guard == "all":
        macro_own, macro_glob = macro_f1(own, positives), macro_f1(glob, positives)
        better = macro_own is not None and macro_glob is not None and macro_own > macro_glob
        close = micro_f1(own, positives) >= micro_f1(glob, positives) - tol
        keep = np.full(n_labels, bool(better and close))
        why = (
            "all: per-label cuts beat the global cut out of fold"
            if keep.all()
            else "all: per-label cuts did not beat the global cut out of fold "
            + ("on macro F1" if not better else "within micro_tolerance on micro F1")
        )
        return keep, {"decision": why, "kept_own": int(keep.sum()), "reverted_for_micro": 0}
    if guard == "group":
        keep = groups_earn_their_place(own, glob, positives, confidence)
        why = (
            "group: labels grouped by positives (1, 2-3, 4-7, ...) keep their own cuts where "
            f"the group's mean out-of-fold F1 gain is positive with one-sided confidence "
            f"{confidence:g}"
        )
    else:
        keep = earns_its_place(own, glob, positives, confidence)
        why = (
            "label: own cut where it beats the global cut out of fold with one-sided "
            f"confidence {confidence:g}"
        )
    earned = int(keep.sum())
    reverted = _revert_for_micro(keep, own, glob, positives, tol)
    return keep, {
        "decision": why,
        "kept_own": int(keep.sum()),
        "earned": earned,
        "reverted_for_micro": reverted,
    }
