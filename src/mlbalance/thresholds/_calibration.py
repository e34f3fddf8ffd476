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

CLIP = 1e-15


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1.0 - CLIP)
    with np.errstate(invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN (a label without a cut) stays NaN
        return np.exp(-np.logaddexp(0.0, -u))


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


def _loss_grad_hess(z: np.ndarray, t: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, ...]:
    u = a * z
    loss = (np.logaddexp(0.0, u) - t * u).sum(axis=0)
    p = _sigmoid(u)
    return loss, ((p - t) * z).sum(axis=0), (p * (1.0 - p) * z * z).sum(axis=0)


def fit_temperature(y: sp.csr_matrix, s: np.ndarray, *, max_iter: int = 100) -> Temperature:
    """Fit one temperature per label on scores *s* (n, L) and truth *y* (CSR, n x L)."""
    n, n_labels = s.shape
    z = _logit(s)
    dense = y.toarray().astype(bool)
    pos = dense.sum(axis=0)
    t = np.where(dense, (pos + 1.0) / (pos + 2.0), 1.0 / (n - pos + 2.0))
    a = np.ones(n_labels)
    for _ in range(max_iter):
        loss, grad, hess = _loss_grad_hess(z, t, a)
        active = np.abs(grad) > 1e-7 * n
        if not active.any():
            break
        da = np.where(active, -grad / (hess + 1e-12), 0.0)
        step = np.ones(n_labels)
        for _ in range(30):  # backtracking, per label
            ok = _loss_grad_hess(z, t, a + step * da)[0] <= loss + 1e-4 * step * grad * da
            if ok.all():
                break
            step = np.where(ok, step, step / 2.0)
        a = a + step * da
    a[~(a > 1e-6)] = 1.0
    return Temperature(a=a)
