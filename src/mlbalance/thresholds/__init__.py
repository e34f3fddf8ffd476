"""Per-label decision thresholds for any multilabel model's scores (numpy and numba; no torch).

:class:`ThresholdTuner` (scikit-learn style) tunes one threshold per label on validation
scores; :func:`tune_thresholds` is the same procedure as one function (what ``mlbalance
train`` calls); ``mlbalance thresholds tune|apply`` is the command line.

The search (:mod:`mlbalance.thresholds._search`)
    Per label the cut maximising its F1 (``mode="f1"``) or the highest cut reaching
    ``target_recall`` (``mode="recall"``), exactly, from one compiled pass over the scores; the
    threshold sits midway between the chosen score and the next lower one (half the lowest
    score when every row is predicted), clipped into ``[1e-12, 1 - 1e-12]``. The global cut
    maximises micro F1 over all labels and rows (exactly), or reaches ``target_recall`` of all
    positives. A label is predicted when ``score >= threshold`` (:mod:`mlbalance.metrics`).

The rules (:mod:`mlbalance.thresholds._rules`)
    Fallbacks for labels with fewer than ``min_positives`` positives (``"global"``,
    ``"shrink"``, ``"rare"``), smoothing toward the global cut by pseudo-count, and the firing
    cap ``max_rate``. Without the cap binding, a tuned label's F1 on the tuning rows is never
    below its F1 at 0.5 (0.5 is one of the cuts searched).

Not over-fitting a small dev set (:mod:`mlbalance.thresholds._crossfit`)
    ``cv=k`` cross-fits the whole procedure on ``k`` stratified folds and reports out-of-fold
    micro and macro F1; ``average="mean"`` bags the fold cuts; ``guard="group"`` keeps
    per-label cuts only for the frequency groups of labels where they beat the global cut out
    of fold, and not at the cost of out-of-fold micro F1.

Theory: for micro-averaged F1 the optimal decision thresholds all labels' (calibrated)
probabilities at one shared cut; for macro-averaged F1 each label has its own (Koyejo, Natarajan,
Ravikumar and Dhillon, NeurIPS 2015, "Consistent multilabel classification"). Per-label cuts thus
trade micro F1 for macro F1 even when perfectly estimated, and on few positives they also fit
noise; the guard keeps that trade within ``micro_tolerance``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbalance.metrics import check_scores
from mlbalance.thresholds._result import FORMAT, KIND_TEXT, ThresholdResult
from mlbalance.thresholds.tuner import AVERAGES, FALLBACKS, GUARDS, MODES, ThresholdTuner

__all__ = [
    "AVERAGES",
    "FALLBACKS",
    "FORMAT",
    "GUARDS",
    "KIND_TEXT",
    "MODES",
    "ThresholdResult",
    "ThresholdTuner",
    "apply_thresholds",
    "tune_thresholds",
]


def apply_thresholds(scores: Any, thresholds: Any) -> np.ndarray:
    """Boolean predictions ``scores >= thresholds`` (a scalar or one per label)."""
    from mlbalance.errors import ParameterError

    s = check_scores(scores)
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 1 and thr.size != s.shape[1]:
        raise ParameterError(
            f"{thr.size} thresholds for {s.shape[1]} label columns", param="thresholds"
        )
    return s >= thr


def tune_thresholds(
    y_true: Any,
    scores: Any,
    *,
    mode: str = "f1",
    target_recall: float | None = None,
    min_positives: int = 3,
    fallback: str = "global",
    shrink: float = 3.0,
    max_rate: float | None = 10.0,
    smoothing: float = 0.0,
    rare_k: int = 10,
    chunk_rows: int = 65536,
) -> ThresholdResult:
    """Tune one threshold per label on validation scores (``ThresholdTuner(...).fit``).

    Parameters
    ----------
    y_true : LabelMatrix, scipy sparse matrix, dense 0/1 array or list of label lists
        Validation truth, shape ``(n, L)``.
    scores : array of float, shape (n, L)
        Validation probabilities in [0, 1].
    mode, target_recall, min_positives, fallback, shrink, max_rate, smoothing, rare_k
        As :class:`ThresholdTuner`.
    chunk_rows : int, default 65536
        Kept for compatibility: it bounded the memory of the former global search; the compiled
        passes now need O(labels) memory beyond the scores, so it changes nothing.

    Returns
    -------
    ThresholdResult
    """
    from mlbalance._params import Interval

    Interval(int, 1, None).check("chunk_rows", chunk_rows)
    tuner = ThresholdTuner(
        mode=mode,
        target_recall=target_recall,
        min_positives=min_positives,
        fallback=fallback,
        shrink=shrink,
        max_rate=max_rate,
        smoothing=smoothing,
        rare_k=rare_k,
    )
    return tuner.fit(scores, y_true).result_
