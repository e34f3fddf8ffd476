"""Per-label score calibration fitted on the tuning rows (an option of the tuner).

``"platt"``: Platt scaling (Platt 1999, "Probabilistic outputs for support vector machines and
comparisons to regularized likelihood methods"), ``p' = sigmoid(a z + b)`` on the logit ``z`` of
each label's score, fitted by maximum likelihood against Platt's smoothed targets
``(P + 1) / (P + 2)`` for positives and ``1 / (N + 2)`` for negatives — his own guard against
over-fitting few positives — with Newton steps and a backtracking line search (Lin, Lin and
Weng 2007, "A note on Platt's probabilistic outputs for support vector machines").
``"temperature"``: the one-parameter special case ``b = 0`` (temperature scaling, Guo et al.
2017, "On calibration of modern neural networks"), here per label.

A calibration is a strictly increasing map per label (``a > 0``; a label whose fit gives
``a <= 0`` — it ranks its positives below its negatives — keeps its scores), so it never changes
which rows a per-label threshold separates: it moves the *global* cut (one cut on calibrated
scores is a different raw cut per label), the fallback thresholds and the smoothing target.
Thresholds found on calibrated scores are mapped back to the raw scores, so a calibrated tuner
still writes plain per-label thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

CLIP = 1e-15
METHODS = ("platt", "temperature")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1.0 - CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN (a label without a cut) stays NaN
        return np.exp(-np.logaddexp(0.0, -u))


@dataclass
class Calibration:
    """Per-label ``p' = sigmoid(a z + b)`` with ``z = logit(p)``."""

    method: str
    a: np.ndarray
    b: np.ndarray

    def transform(self, s: np.ndarray) -> np.ndarray:
        """Calibrated scores (float64, C-contiguous)."""
        return np.ascontiguousarray(_sigmoid(self.a * _logit(s) + self.b))

    def forward(self, thresholds: np.ndarray) -> np.ndarray:
        """Raw thresholds -> calibrated ones (NaN stays NaN)."""
        return _sigmoid(self.a * _logit(thresholds) + self.b)

    def to_raw(self, thresholds: np.ndarray) -> np.ndarray:
        """Calibrated thresholds -> raw ones (NaN stays NaN)."""
        return _sigmoid((_logit(thresholds) - self.b) / self.a)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready parameters."""
        return {"method": self.method, "a": self.a.tolist(), "b": self.b.tolist()}


def _loss_grad_hess(
    z: np.ndarray, t: np.ndarray, a: np.ndarray, b: np.ndarray, fit_b: bool
) -> tuple[np.ndarray, ...]:
    u = a * z + b
    loss = (np.logaddexp(0.0, u) - t * u).sum(axis=0)
    p = _sigmoid(u)
    r = p - t
    w = p * (1.0 - p)
    ga, haa = (r * z).sum(axis=0), (w * z * z).sum(axis=0)
    if not fit_b:
        return loss, ga, haa
    gb, hab, hbb = r.sum(axis=0), (w * z).sum(axis=0), w.sum(axis=0)
    return loss, ga, gb, haa, hab, hbb


def fit_calibration(
    y: sp.csr_matrix, s: np.ndarray, method: str, *, max_iter: int = 100
) -> Calibration:
    """Fit one calibration per label on scores *s* (n, L) and truth *y* (CSR, n x L)."""
    n, n_labels = s.shape
    z = _logit(s)
    dense = y.toarray().astype(bool)
    pos = dense.sum(axis=0)
    t = np.where(dense, (pos + 1.0) / (pos + 2.0), 1.0 / (n - pos + 2.0))
    a, b = np.ones(n_labels), np.zeros(n_labels)
    fit_b = method == "platt"
    sigma = 1e-12
    for _ in range(max_iter):
        out = _loss_grad_hess(z, t, a, b, fit_b)
        loss = out[0]
        if fit_b:
            _, ga, gb, haa, hab, hbb = out
            haa, hbb = haa + sigma, hbb + sigma
            det = haa * hbb - hab * hab
            da = -(hbb * ga - hab * gb) / det
            db = -(-hab * ga + haa * gb) / det
            slope = ga * da + gb * db
        else:
            _, ga, haa = out
            da = -ga / (haa + sigma)
            db = np.zeros(n_labels)
            slope = ga * da
        tol = 1e-7 * n
        converged = np.abs(ga) <= tol
        if fit_b:
            converged &= np.abs(out[2]) <= tol
        active = ~converged
        if not active.any():
            break
        step = np.where(active, 1.0, 0.0)
        for _ in range(30):  # backtracking, per label
            na, nb = a + step * da, b + step * db
            new_loss = _loss_grad_hess(z, t, na, nb, fit_b)[0]
            ok = new_loss <= loss + 1e-4 * step * slope
            if ok.all():
                break
            step = np.where(ok, step, step / 2.0)
        a, b = a + step * da, b + step * db
    flipped = ~(a > 1e-6)
    a[flipped], b[flipped] = 1.0, 0.0
    return Calibration(method=method, a=a, b=b)
