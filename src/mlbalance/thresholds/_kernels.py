"""Compiled (numba) passes over a score matrix for the threshold search.

Each kernel is one pass over the rows ``rows`` of a C-contiguous ``(n, L)`` score matrix, row by
row (its memory order), so no column is copied or sorted. Scores are bucketed by the top bits of
their IEEE representation (:func:`bucket_of`), which orders non-negative floats like their values:
16 buckets per octave from ``2**-40`` to 1, everything below in bucket 0. A histogram per label in
these buckets is one increment per score; the exact search then binary-searches only the scores
in the few buckets that can hold a label's best cut. Scores are compared in float64 after an exact
widening, so float32 model outputs compare exactly against float64 thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

#: Buckets: bucket 0 holds [0, 2**-40); then 16 per octave up to [1, 2) (1.0 is the last).
MANTISSA_BITS = 4
LOWEST_OCTAVE = -40
N_BUCKETS = 1 + (-LOWEST_OCTAVE) * (1 << MANTISSA_BITS) + 1


def bucket_params(dtype: Any) -> tuple[int, int]:
    """``(shift, first_key)`` of :func:`bucket_of` for float32 or float64 bit patterns."""
    if np.dtype(dtype) == np.float32:
        mantissa, bias = 23, 127
    else:
        mantissa, bias = 52, 1023
    shift = mantissa - MANTISSA_BITS
    return shift, (bias + LOWEST_OCTAVE) << MANTISSA_BITS


@njit(cache=True, nogil=True, inline="always")
def bucket_of(bits: np.int64, shift: int, first_key: int) -> int:
    """The bucket of a non-negative float from its bit pattern (monotone in the value)."""
    key = bits >> shift
    if key < first_key:
        return 0
    return min(int(key - first_key) + 1, N_BUCKETS - 1)


def buckets(values: np.ndarray) -> np.ndarray:
    """:func:`bucket_of` for an array of float64 values (numpy)."""
    shift, first = bucket_params(np.float64)
    key = values.astype(np.float64).view(np.int64) >> shift
    return np.where(key < first, 0, np.minimum(key - first + 1, N_BUCKETS - 1))


@njit(cache=True, nogil=True)
def histograms(
    bits: np.ndarray, rows: np.ndarray, shift: int, first: int, hist: np.ndarray
) -> None:
    """``hist[c, b]`` += the rows whose score of label ``c`` falls in bucket ``b``."""
    n_labels = bits.shape[1]
    for r in range(rows.shape[0]):
        i = rows[r]
        for c in range(n_labels):
            hist[c, bucket_of(bits[i, c], shift, first)] += 1


@njit(cache=True, nogil=True, inline="always")
def _rank(cand: np.ndarray, lo: int, hi: int, x: float) -> int:
    """How many of the ascending ``cand[lo:hi]`` are ``<= x``."""
    a = lo
    e = hi
    while a < e:
        m = (a + e) >> 1
        if cand[m] <= x:
            a = m + 1
        else:
            e = m
    return a - lo


@njit(cache=True, nogil=True)
def interval_bins(
    s: np.ndarray,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cand: np.ndarray,
    offsets: np.ndarray,
    bins: np.ndarray,
    bin_max: np.ndarray,
    below: np.ndarray,
    global_lo: float,
    global_hi: float,
    global_cand: np.ndarray,
    global_bins: np.ndarray,
    global_bin_max: np.ndarray,
) -> float:
    """Exact counts of the scores in each label's searched interval, and globally.

    A score ``x`` of label ``c`` with ``lo[c] <= x < hi[c]`` goes to bin
    ``offsets[c] + c + k``, ``k`` = how many of the label's ascending candidates
    ``cand[offsets[c]:offsets[c + 1]]`` are ``<= x``; ``bin_max`` keeps each bin's largest
    score and ``below[c]`` the largest score under ``lo[c]`` (so the next lower score below any
    candidate is known without another pass). The same for all scores with ``global_lo``,
    ``global_hi``, ``global_cand``, ``global_bins`` and ``global_bin_max``; returns the largest
    score below ``global_lo``.
    """
    n_labels = s.shape[1]
    n_global = global_cand.shape[0]
    global_below = -np.inf
    for r in range(rows.shape[0]):
        i = rows[r]
        for c in range(n_labels):
            x = np.float64(s[i, c])
            if x >= lo[c]:  # rare: most scores lie below the searched interval
                if x < hi[c]:
                    start = offsets[c]
                    k = start + c + _rank(cand, start, offsets[c + 1], x)
                    bins[k] += 1
                    bin_max[k] = max(bin_max[k], x)
            else:
                below[c] = max(below[c], x)
            if x >= global_lo:
                if x < global_hi:
                    k = _rank(global_cand, 0, n_global, x)
                    global_bins[k] += 1
                    global_bin_max[k] = max(global_bin_max[k], x)
            else:
                global_below = max(global_below, x)
    return global_below


@njit(cache=True, nogil=True)
def max_below(
    s: np.ndarray, rows: np.ndarray, cuts: np.ndarray, global_cut: float
) -> tuple[np.ndarray, float]:
    """Per label the largest score below ``cuts[c]``, and the largest below ``global_cut``.

    ``-inf`` where there is none; a NaN cut finds none.
    """
    n_labels = s.shape[1]
    out = np.full(n_labels, -np.inf)
    best = -np.inf
    for r in range(rows.shape[0]):
        i = rows[r]
        for c in range(n_labels):
            x = np.float64(s[i, c])
            if x < cuts[c] and x > out[c]:
                out[c] = x
            if x < global_cut and x > best:
                best = x
    return out, best


@njit(cache=True, nogil=True)
def count_at_least(s: np.ndarray, rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per label, how many of the rows score ``>= thresholds[c]``."""
    n_labels = s.shape[1]
    out = np.zeros(n_labels, dtype=np.int64)
    for r in range(rows.shape[0]):
        i = rows[r]
        for c in range(n_labels):
            if np.float64(s[i, c]) >= thresholds[c]:
                out[c] += 1
    return out
