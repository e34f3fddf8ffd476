"""Per-label temperature scaling fitted on the tuning rows (``calibration="temperature"``).

Temperature scaling (Guo, Pleiss, Sun and Weinberger, ICML 2017, "On calibration of modern
neural networks") divides a logit by a temperature fitted by maximum likelihood; here one per
label, ``p' = sigmoid(a z)`` with ``z = logit(p)`` and ``a = 1 / T > 0``, fitted by Newton steps
with a backtracking line search against Platt's smoothed targets ``(P + 1) / (P + 2)`` for
positives and ``1 / (N + 2)`` for negatives (Platt 1999, his guard against over-fitting few
positives). It uses every row of a label, negatives included, so it is stable where an F1-best
cut, which only moves at positives, is not. We also measured Platt scaling (``a z + b``): it
lowered macro F1 on both benchmark sets and was dropped (BENCHMARKS.md).

A temperature is a strictly increasing map per label (a label whose fit gives ``a <= 0`` keeps
its scores), so it never changes which rows a label's own cut separates: it moves the *global*
cut (one cut on scaled scores is a different raw cut per label), the fallback thresholds and the
smoothing target. Thresholds found on scaled scores are mapped back to raw scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

CLIP = 1e-15


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1.0 - CLIP)
    with np.errstate(invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return expit(u)  # NaN (a label without a cut) stays NaN


@dataclass
class Temperature:
    """Per-label ``p' = sigmoid(a z)``, ``z = logit(p)``."""

    a: np.ndarray

    def transform(self, s: np.ndarray) -> np.ndarray:
        """Scaled scores (float64, C-contiguous)."""
        return np.ascontiguousarray(_sigmoid(self.a * _logit(s)))

    def forward(self, thresholds: np.ndarray) -> np.ndarray:
        """Raw thresholds -> scaled ones (NaN stays NaN)."""
        return _sigmoid(self.a * _logit(thresholds))

    def to_raw(self, thresholds: np.ndarray) -> np.ndarray:
        """Scaled thresholds -> raw ones (NaN stays NaN)."""
        return _sigmoid(_logit(thresholds) / self.a)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready parameters (``temperature`` = 1 / a per label)."""
        return {"method": "temperature", "temperature": (1.0 / self.a).tolist()}


def _grad_hess(
    z: np.ndarray, t: np.ndarray, w: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives in ``a`` of the weighted log loss ``sum w (softplus(a z) - t a z)``."""
    p = expit(a * z)
    return (w * (p - t) * z).sum(axis=0), (w * p * (1.0 - p) * z * z).sum(axis=0)


def fit_temperature(
    y: sp.csr_matrix,
    s: np.ndarray,
    *,
    max_iter: int = 100,
    block: int = 32,
    sample: int = 4096,
    min_positives: int = 256,
) -> Temperature:
    """Fit one temperature per label on scores *s* (n, L) and truth *y* (CSR, n x L).

    Labels are fitted *block* at a time on a fixed random sample of *sample* rows, plus every
    positive row of a label with fewer than *min_positives* positives in the sample; each
    label's positive and negative cells are weighted up to stand for all of its positives and
    negatives. The cost does not grow with the rows beyond the sample.
    """
    n, n_labels = s.shape
    csc = y.tocsc()
    base = np.sort(np.random.default_rng(0).permutation(n)[:sample])
    a = np.ones(n_labels)
    for start in range(0, n_labels, block):
        cols = np.arange(start, min(start + block, n_labels))
        sub = csc[:, cols]
        pos = np.diff(sub.indptr)
        in_base = sub[base].sum(axis=0).A1 if base.size < n else pos
        few = np.flatnonzero(in_base < np.minimum(pos, min_positives))
        extra = [sub.indices[sub.indptr[j] : sub.indptr[j + 1]] for j in few]
        rows = np.union1d(base, np.concatenate(extra)) if extra else base
        dense = sub[rows].toarray().astype(bool)
        pos_here, neg_here = dense.sum(axis=0), (~dense).sum(axis=0)
        weight = np.where(dense, pos / np.maximum(pos_here, 1),
                          (n - pos) / np.maximum(neg_here, 1))  # fmt: skip
        t = np.where(dense, (pos + 1.0) / (pos + 2.0), 1.0 / (n - pos + 2.0))
        a[cols] = _newton(_logit(s[rows][:, cols]), t, weight, max_iter)
    a[~(a > 1e-6)] = 1.0
    return Temperature(a=a)


def _newton(z: np.ndarray, t: np.ndarray, w: np.ndarray, max_iter: int) -> np.ndarray:
    """Safeguarded Newton on the derivative, per column (the loss is convex in ``a``).

    The root is bracketed (the derivative is increasing); a Newton step that leaves the bracket
    is replaced by bisection (or doubling while there is no upper end). A column whose
    derivative at ``a = 0`` is already >= 0 has no positive root: it gets ``a = 0`` (kept as
    raw scores by the caller).
    """
    n_cols = z.shape[1]
    lo, hi = np.zeros(n_cols), np.full(n_cols, np.inf)
    g0, _ = _grad_hess(z, t, w, np.zeros(n_cols))
    a = np.where(g0 >= 0, 0.0, 1.0)
    active = g0 < 0
    for _ in range(max_iter):
        cols = np.flatnonzero(active)
        if cols.size == 0:
            break
        ac = a[cols]
        g, h = _grad_hess(z[:, cols], t[:, cols], w[:, cols], ac)
        lo[cols] = np.where(g < 0, ac, lo[cols])
        hi[cols] = np.where(g > 0, ac, hi[cols])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = ac - g / h
        inside = (new > lo[cols]) & (new < hi[cols])
        fallback = np.where(np.isfinite(hi[cols]), (lo[cols] + hi[cols]) / 2, 2 * ac)
        new = np.where(inside, new, fallback)
        a[cols] = new
        active[cols] = (np.abs(new - ac) > 1e-6 * np.abs(ac)) & (g != 0)
    return a
