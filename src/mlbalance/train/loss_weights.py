"""Label-count-derived quantities of the losses: positive weights and prior log odds.

numpy only; :mod:`mlbalance.train.losses` builds its loss modules from these.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlbalance.errors import ParameterError

__all__ = ["SCHEMES", "check_counts", "pos_weights", "prior_log_odds"]

SCHEMES: tuple[str, ...] = ("inverse", "sqrt-inverse", "log", "effective-number", "none")


# --------------------------------------------------------------------------------------------
# weights from label counts
# --------------------------------------------------------------------------------------------
def check_counts(label_counts: Any, n_rows: Any) -> tuple[np.ndarray, int]:
    """Validate training label counts and rows; return them as float64 counts and an int."""
    counts = np.asarray(label_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ParameterError(
            "label_counts must be a non-empty 1-D array of rows per label, "
            f"got shape {counts.shape}"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        bad = counts[~np.isfinite(counts) | (counts < 0)][0]
        raise ParameterError(f"label_counts must be finite and >= 0, found {bad!r}")
    try:
        n = int(n_rows)
    except (TypeError, ValueError):
        raise ParameterError(f"n_rows must be an integer, got {n_rows!r}") from None
    if n < 1:
        raise ParameterError(f"n_rows must be >= 1, got {n}")
    if counts.max() > n:
        raise ParameterError(
            f"a label count ({int(counts.max())}) exceeds n_rows={n}: counts and rows disagree"
        )
    return counts, n


def pos_weights(
    label_counts: Any,
    n_rows: int,
    scheme: str = "sqrt-inverse",
    max_weight: float | None = None,
    beta: float = 0.999,
) -> np.ndarray:
    """Weight of each label's positive term from its training count.

    With ``N`` training rows and ``n_c`` positives of label ``c`` (counts of 0 are treated as 1,
    since such a label never contributes a positive term):

    ``inverse``
        ``w_c = (N - n_c) / n_c``, the negative/positive ratio (what
        ``BCEWithLogitsLoss(pos_weight=...)`` documents). Unbounded: 1e6 rows and a label with
        one row give ~1e6 — the instability this module exists to avoid.
    ``sqrt-inverse``
        ``w_c = sqrt((N - n_c) / n_c)``.
    ``log``
        ``w_c = 1 + ln(N / n_c)``; 1 for a label on every row, ~14.8 for 1 row in 1e6.
    ``effective-number``
        Cui et al. (2019), "Class-Balanced Loss Based on Effective Number of Samples", CVPR:
        ``w_c = (1 - beta) / (1 - beta ** n_c)``, normalised, as in the paper, so that the weights
        sum to the number of labels (mean 1). Used here as the positive-term weight.
    ``none``
        all ones.

    ``max_weight`` then clips every weight to at most that value (the bound that keeps raw
    inverse weights from blowing up the loss).

    Parameters
    ----------
    label_counts : array of int, shape (labels,)
        Training rows per label.
    n_rows : int
        Training rows ``N``.
    scheme : str, default "sqrt-inverse"
        One of ``inverse``, ``sqrt-inverse``, ``log``, ``effective-number``, ``none``.
    max_weight : float, optional
        Upper clip, > 0.
    beta : float, default 0.999
        The effective-number hyper-parameter, in [0, 1).

    Returns
    -------
    numpy.ndarray of float64, shape (labels,)
    """
    counts, n = check_counts(label_counts, n_rows)
    n_c = np.maximum(counts, 1.0)
    if scheme == "inverse":
        w = (n - n_c) / n_c
    elif scheme == "sqrt-inverse":
        w = np.sqrt((n - n_c) / n_c)
    elif scheme == "log":
        w = 1.0 + np.log(n / n_c)
    elif scheme == "effective-number":
        if not 0.0 <= beta < 1.0:
            raise ParameterError(f"beta must be in [0, 1), got {beta}")
        # (1 - beta) / (1 - beta**n); -expm1(n * log(beta)) = 1 - beta**n without cancellation
        if beta == 0.0:
            w = np.ones_like(n_c)
        else:
            w = (1.0 - beta) / -np.expm1(n_c * math.log(beta))
        w = w * (w.size / w.sum())
    elif scheme == "none":
        w = np.ones_like(n_c)
    else:
        raise ParameterError(
            f"unknown pos-weight scheme {scheme!r}; choose from {', '.join(SCHEMES)}"
        )
    if max_weight is not None:
        if not max_weight > 0:
            raise ParameterError(f"max_weight must be > 0, got {max_weight}")
        w = np.minimum(w, float(max_weight))
    return w.astype(np.float64)


def prior_log_odds(label_counts: Any, n_rows: int) -> np.ndarray:
    """Log prior odds ``log(p_c / (1 - p_c))`` of each label, ``p_c = n_c / N``.

    Counts of 0 are treated as 1 (a label never seen in training gets the prior of one row), and
    ``p_c`` is clipped to ``[1e-12, 1 - 1e-12]``, so a label on every row gets a large finite
    value (about 27.6) instead of infinity. The priors of the distribution-balanced loss (its
    NTR shift) and of the logit-adjusted loss. (The trainer's head-bias initialisation,
    :func:`mlbalance.train.model.prior_logits`, clips at ``1 / (2N)`` instead; the two differ
    only for labels with no row or on every row.)

    Parameters
    ----------
    label_counts : array of int, shape (labels,)
        Training rows per label.
    n_rows : int
        Training rows ``N``.

    Returns
    -------
    numpy.ndarray of float64, shape (labels,)
    """
    counts, n = check_counts(label_counts, n_rows)
    p = np.clip(np.clip(counts, 1.0, None) / n, 1e-12, 1.0 - 1e-12)
    return np.log(p / (1.0 - p))
