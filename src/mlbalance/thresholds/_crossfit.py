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
  the global cut on rows they were not tuned on;
* **bagged cuts** (``average="median"`` or ``"mean"``): each label's own cut is the median or
  mean of its ``k`` fold cuts (SCutFBR averages fold cuts; bagging a noisy arg-max reduces its
  variance — Breiman 1996, Bühlmann and Yu 2002). We do *not* offer "the cut maximising the
  summed out-of-fold F1": with a fixed model that objective is the F1 of all tuning rows again
  (every candidate cut is scored on every row), so it over-fits exactly as plain tuning does;
* **the guard** (``guard="label"``): the global cut is the default, and a label keeps its own
  cut only where the held-out rows give evidence that it is better. Out of fold, the own cut
  predicts ``d`` more rows than the global cut (or fewer), ``e`` more true positives among
  them; the own cut has the higher F1 exactly when the precision ``e / d`` of those rows is
  above (when ``d > 0``; below when ``d < 0``) half the global cut's F1 — the marginal
  precision rule of Lipton, Elkan and Naryanaswamy (2014, "Optimal thresholding of classifiers
  to maximize F1 measure"). The guard asks that of the one-sided Wilson bound at ``confidence``
  rather than of ``e / d`` itself: choosing per label whichever of two noisy estimates is
  larger would keep many cuts that only won by chance (a winner's curse). Then, while the
  out-of-fold micro F1 of the mix is more than ``micro_tolerance`` below that of the global cut
  alone, the label whose reversion buys the most micro F1 per macro F1 lost goes back to the
  global cut. ``guard="all"``: all labels keep their own cuts only if out of fold they beat the
  global cut on macro F1 and stay within ``micro_tolerance`` of it on micro F1. Weighing macro
  gains against micro losses follows Lin and Lin's joint micro/macro objective and the mixed
  utilities of xCOLUMNs (Schultheis et al. 2024, "Generalized test utilities for long-tail
  performance in extreme multi-label classification").
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


def decide(
    own: Counts,
    glob: Counts,
    positives: np.ndarray,
    guard: str,
    micro_tolerance: float | None,
    confidence: float = 0.9,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Which labels keep their own cut, and what was decided on which estimate."""
    f_own, f_glob = f1(own, positives), f1(glob, positives)
    tol = np.inf if micro_tolerance is None else float(micro_tolerance)
    micro_glob = micro_f1(glob, positives)
    n_labels = positives.size
    if guard == "all":
        macro_own, macro_glob = macro_f1(own, positives), macro_f1(glob, positives)
        better = macro_own is not None and macro_glob is not None and macro_own > macro_glob
        close = micro_f1(own, positives) >= micro_glob - tol
        keep = np.full(n_labels, bool(better and close))
        why = (
            "per-label cuts beat the global cut out of fold"
            if keep.all()
            else "per-label cuts did not beat the global cut out of fold "
            + ("on macro F1" if not better else "within micro_tolerance on micro F1")
        )
        return keep, {"decision": why, "kept_own": int(keep.sum()), "reverted_for_micro": 0}
    keep = earns_its_place(own, glob, positives, confidence)
    not_earned = int((~keep).sum())
    reverted = 0
    n_eval = max(int((positives > 0).sum()), 1)
    while True:
        mix = _mix(own, glob, keep)
        micro = micro_f1(mix, positives)
        if micro >= micro_glob - tol or not keep.any():
            break
        tp, den = int(mix.tp.sum()), int(positives.sum() + mix.pred.sum())
        d_tp = (glob.tp - own.tp).astype(np.float64)
        d_den = (glob.pred - own.pred).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 2.0 * (tp + d_tp) / (den + d_den) - micro
        loss = np.maximum(f_own - f_glob, 0.0) / n_eval
        ratio = np.where(keep & (gain > 0), gain / np.maximum(loss, 1e-12), -np.inf)
        c = int(np.argmax(ratio))
        if ratio[c] == -np.inf:
            break
        keep[c] = False
        reverted += 1
    return keep, {
        "decision": "per label: own cut where it beats the global cut out of fold with "
        f"one-sided confidence {confidence:g}",
        "kept_own": int(keep.sum()),
        "not_earned": not_earned,
        "reverted_for_micro": reverted,
    }
