"""Repeat factors, row weights and label-exposure diagnostics (numpy only, no torch).

Everything here works on a :class:`~mlbalance.labels.LabelMatrix` (or anything
:func:`~mlbalance.labels.as_label_matrix` accepts) and returns numpy arrays, so
``mlbalance analyse`` and the demo can show what a sampler will do to label exposure
before anyone imports torch.

References
----------
Gupta, Dollár and Girshick (2019), "LVIS: A Dataset for Large Vocabulary Instance
Segmentation", CVPR, appendix B.2 (repeat-factor sampling).
Shen, Lin and Huang (2016), "Relay Backpropagation for Effective Learning of Deep
Convolutional Neural Networks", ECCV (class-aware sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbalance.buckets import BUCKETS, DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX, label_buckets
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "LabelExposure",
    "check_repeat_parameters",
    "class_aware_exposure",
    "class_aware_row_probabilities",
    "label_repeat_factors",
    "repeat_exposure",
    "repeat_factors",
    "row_weights",
    "stochastic_round",
]

_METHOD_NAMES = {"repeat": "repeat-factor", "class_aware": "class-aware"}

# Rows processed per chunk when rounding factors, to keep temporaries small at 10^8 rows.
_CHUNK = 1 << 22


def check_repeat_parameters(
    threshold: float, power: float = 0.5, max_repeat: float | None = None
) -> tuple[float, float, float | None]:
    """Validate the repeat-factor parameters; return them as floats.

    Raises
    ------
    ParameterError
        ``threshold`` outside (0, 1], ``power`` negative or not finite, ``max_repeat`` < 1.
    """
    try:
        t = float(threshold)
        p = float(power)
        m = None if max_repeat is None else float(max_repeat)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"repeat parameters must be numbers: {exc}") from None
    if not (np.isfinite(t) and 0.0 < t <= 1.0):
        raise ParameterError(f"Invalid threshold {t}, threshold should be in the interval (0, 1]")
    if not (np.isfinite(p) and p >= 0.0):
        raise ParameterError(f"Invalid power {p}, power should be >= 0")
    if m is not None and not (m >= 1.0):  # also rejects NaN
        raise ParameterError(f"Invalid max_repeat {m}, max_repeat should be >= 1")
    return t, p, m


def _nonempty(Y: Any) -> LabelMatrix:
    lm = as_label_matrix(Y)
    if lm.n_rows == 0:
        raise InputError("label matrix is empty: no rows to sample from")
    return lm


def label_repeat_factors(
    counts: np.ndarray,
    n_rows: int,
    threshold: float,
    power: float = 0.5,
    max_repeat: float | None = None,
) -> np.ndarray:
    """Per-label repeat factor ``r(c) = max(1, (t / f(c)) ** power)``, capped at ``max_repeat``.

    Parameters
    ----------
    counts : array of int
        Rows per label.
    n_rows : int
        Rows in the data set (``f(c) = counts[c] / n_rows``).
    threshold, power, max_repeat
        As in :func:`repeat_factors`.

    Returns
    -------
    numpy.ndarray of float64
        One factor per label; 1.0 for labels with no row (they never decide a row's factor).
    """
    t, p, m = check_repeat_parameters(threshold, power, max_repeat)
    counts = np.asarray(counts, dtype=np.float64)
    if n_rows <= 0:
        raise InputError("label matrix is empty: no rows to sample from")
    out = np.ones(counts.shape, dtype=np.float64)
    seen = counts > 0
    freq = counts[seen] / float(n_rows)
    out[seen] = np.maximum(1.0, (t / freq) ** p)
    if m is not None:
        np.minimum(out, m, out=out)
    return out


def _row_max(lm: LabelMatrix, per_label: np.ndarray, empty: float) -> np.ndarray:
    """For each row, the largest ``per_label`` value over its labels (``empty`` for none)."""
    out = np.full(lm.n_rows, empty, dtype=np.float64)
    indptr = lm.matrix.indptr
    sizes = np.diff(indptr)
    has = sizes > 0
    if lm.nnz:
        vals = per_label[lm.matrix.indices]
        # reduceat over the starts of non-empty rows only: the segment of a non-empty row
        # then runs to the start of the next non-empty row, which is exactly its own labels.
        out[has] = np.maximum.reduceat(vals, indptr[:-1][has])
    return out


def repeat_factors(
    Y: Any, threshold: float, power: float = 0.5, max_repeat: float | None = None
) -> np.ndarray:
    """Repeat factor of every row, as in LVIS repeat-factor sampling.

    For each label ``c`` let ``f(c)`` be the fraction of rows that carry it. The label's
    factor is ``r(c) = max(1, (t / f(c)) ** power)`` and a row's factor is the largest
    ``r(c)`` over its labels; a row with no label gets 1 (Gupta et al. 2019, appendix B.2;
    detectron2 ``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency``).

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The training labels.
    threshold : float
        ``t`` in (0, 1]: labels on fewer than a fraction ``t`` of the rows are repeated.
        With ``power=0.5``, a label at frequency ``t / 4`` has factor 2.
    power : float, default 0.5
        The exponent: 0.5 is LVIS's square root, 1.0 is detectron2's ``REPEAT_SQRT=False``
        (full inverse frequency below ``t``), 0 turns repeating off. Deviation from the
        paper: LVIS fixes the exponent at 0.5; it is a parameter here.
    max_repeat : float, optional
        Cap on every factor (not in LVIS; stops a label seen once in 10^6 rows from
        dominating an epoch). ``None`` = no cap.

    Returns
    -------
    numpy.ndarray of float64, shape (n_rows,)
        Factors >= 1. Their sum is the expected length of one epoch.

    Raises
    ------
    ParameterError
        ``threshold`` outside (0, 1], negative ``power``, ``max_repeat`` < 1.
    InputError
        An empty label matrix.

    Examples
    --------
    >>> repeat_factors([["a", "b"], ["a"], []], threshold=0.5).round(4).tolist()
    [1.2247, 1.0, 1.0]
    """
    check_repeat_parameters(threshold, power, max_repeat)
    lm = _nonempty(Y)
    per_label = label_repeat_factors(lm.counts(), lm.n_rows, threshold, power, max_repeat)
    return _row_max(lm, per_label, 1.0)


def stochastic_round(factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``floor(r) + Bernoulli(r - floor(r))`` per row: the rows' repeat counts for one epoch.

    The draws are taken in fixed-size chunks, so the result for a seed does not depend on
    how much memory is free and the temporaries stay small for 10^8 rows.

    Parameters
    ----------
    factors : array of float
        Repeat factors (>= 0).
    rng : numpy.random.Generator
        The epoch's generator; exactly ``len(factors)`` uniforms are drawn from it.

    Returns
    -------
    numpy.ndarray of int32 (int64 when a factor exceeds 2^31 - 1)
    """
    factors = np.asarray(factors, dtype=np.float64)
    big = factors.size and float(factors.max()) >= 2**31 - 1
    out = np.empty(factors.size, dtype=np.int64 if big else np.int32)
    for start in range(0, factors.size, _CHUNK):
        f = factors[start : start + _CHUNK]
        whole = np.floor(f)
        u = rng.random(f.size)
        out[start : start + f.size] = whole + (u < (f - whole))
    return out


def class_aware_row_probabilities(Y: Any) -> np.ndarray:
    """Probability that one class-aware draw picks each row.

    A draw picks one of the ``L`` labels that have rows uniformly, then one of that label's
    ``n_c`` rows uniformly (Shen et al. 2016), so row ``i`` is drawn with probability
    ``(1 / L) * sum_{c in i} 1 / n_c``. Rows with no label are never drawn.

    Returns
    -------
    numpy.ndarray of float64, shape (n_rows,), summing to 1
    """
    lm = _nonempty(Y)
    counts = lm.counts()
    used = counts > 0
    if not used.any():
        raise InputError("no row has a label: class-aware sampling has nothing to draw")
    inv = np.zeros(lm.n_labels, dtype=np.float64)
    inv[used] = 1.0 / counts[used]
    rows = np.repeat(np.arange(lm.n_rows), lm.row_sizes())
    p = np.bincount(rows, weights=inv[lm.matrix.indices], minlength=lm.n_rows)
    return p / float(used.sum())


def row_weights(
    Y: Any,
    threshold: float | None = None,
    power: float = 0.5,
    max_repeat: float | None = None,
    *,
    method: str = "repeat",
) -> np.ndarray:
    """Per-row weights for :class:`torch.utils.data.WeightedRandomSampler`.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The training labels.
    threshold, power, max_repeat
        For ``method="repeat"``: as in :func:`repeat_factors` (``threshold`` required).
    method : {"repeat", "class_aware"}, default "repeat"
        ``"repeat"``: the repeat factors themselves. With
        ``num_samples=round(weights.sum())`` and ``replacement=True`` each row is drawn
        ``r_i`` times in expectation, as in repeat-factor sampling, but with Poisson-like
        rather than floor/ceil variation (a factor-1 row may be skipped or drawn twice).
        ``"class_aware"``: the marginal probability of a class-aware draw
        (:func:`class_aware_row_probabilities`); drawing with replacement from these
        weights is exactly class-aware sampling with independent draws.

    Returns
    -------
    numpy.ndarray of float64, shape (n_rows,)

    Notes
    -----
    Limits of ``WeightedRandomSampler`` that :class:`~mlbalance.samplers.RepeatFactorSampler`
    and :class:`~mlbalance.samplers.ClassAwareSampler` do not have:

    * it calls ``torch.multinomial``, which refuses more than 2^24 (16,777,216) categories,
      so it cannot sample a data set of more rows (pytorch issue #2576);
    * it has no distributed version: every rank draws its own sample, so ranks overlap
      and an epoch is not split between them (pytorch issue #77154);
    * it has no ``set_epoch``; it draws from torch's global generator unless given one.
    """
    if method == "repeat":
        if threshold is None:
            raise ParameterError("row_weights(method='repeat') needs a threshold in (0, 1]")
        return repeat_factors(Y, threshold, power, max_repeat)
    if method == "class_aware":
        return class_aware_row_probabilities(Y)
    raise ParameterError(f"Invalid method {method!r}, method should be 'repeat' or 'class_aware'")


# --- diagnostics -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelExposure:
    """Expected positives per label in one epoch, before and after a sampler.

    Attributes
    ----------
    method : str
        ``"repeat"`` or ``"class_aware"``.
    params : dict
        The sampler parameters (threshold, power, max_repeat or num_samples).
    n_rows : int
        Rows in the data.
    expected_epoch_length : float
        Expected rows drawn per epoch (the sum of the repeat factors).
    rows_repeated : int
        Rows whose expected count exceeds 1.
    max_row_factor : float
        The largest expected count of one row.
    names : tuple of str
        Label names.
    buckets : numpy.ndarray of str
        ``head`` / ``medium`` / ``tail`` per label (:func:`mlbalance.buckets.label_buckets`).
    label_factors : numpy.ndarray
        Per-label repeat factor ``r(c)`` (NaN for class-aware sampling).
    before : numpy.ndarray
        Positives per label in one plain epoch (the label counts).
    after : numpy.ndarray
        Expected positives per label in one sampled epoch.
    """

    method: str
    params: dict[str, Any]
    n_rows: int
    expected_epoch_length: float
    rows_repeated: int
    max_row_factor: float
    names: tuple[str, ...]
    buckets: np.ndarray
    label_factors: np.ndarray
    before: np.ndarray
    after: np.ndarray
    head_min: int = field(default=DEFAULT_HEAD_MIN)
    tail_max: int = field(default=DEFAULT_TAIL_MAX)

    @property
    def gain(self) -> np.ndarray:
        """``after / before`` per label (NaN for labels with no row)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.before > 0, self.after / np.maximum(self.before, 1), np.nan)

    def bucket_table(self) -> list[dict[str, Any]]:
        """Per bucket: labels, positives before/after, their share of all positives, gain."""
        total_before = float(self.before.sum()) or 1.0
        total_after = float(self.after.sum()) or 1.0
        rows = []
        for name in BUCKETS:
            mask = self.buckets == name
            b = float(self.before[mask].sum())
            a = float(self.after[mask].sum())
            rows.append(
                {
                    "bucket": name,
                    "labels": int(mask.sum()),
                    "positives_before": b,
                    "positives_after": a,
                    "share_before": b / total_before,
                    "share_after": a / total_after,
                    "gain": (a / b) if b else None,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: totals, the bucket table and one record per label."""
        gain = self.gain
        labels = [
            {
                "label": n,
                "bucket": str(bk),
                "count": int(b),
                "label_factor": None if np.isnan(f) else float(f),
                "positives_before": float(b),
                "positives_after": float(a),
                "gain": None if np.isnan(g) else float(g),
            }
            for n, bk, f, b, a, g in zip(
                self.names, self.buckets, self.label_factors, self.before, self.after, gain
            )
        ]
        return {
            "method": self.method,
            "params": dict(self.params),
            "n_rows": self.n_rows,
            "expected_epoch_length": float(self.expected_epoch_length),
            "epoch_length_ratio": float(self.expected_epoch_length) / self.n_rows,
            "rows_repeated": self.rows_repeated,
            "max_row_factor": float(self.max_row_factor),
            "bucket_bounds": {"head_min": self.head_min, "tail_max": self.tail_max},
            "buckets": self.bucket_table(),
            "labels": labels,
        }

    def summary(self, top: int = 5) -> str:
        """A few lines for a terminal: epoch length and the bucket table."""
        p = ", ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        lines = [
            f"{_METHOD_NAMES.get(self.method, self.method)} sampling ({p}): expected epoch "
            f"{self.expected_epoch_length:,.0f} rows "
            f"({self.expected_epoch_length / self.n_rows:.2f}x the {self.n_rows:,} rows)",
            f"  {self.rows_repeated:,} rows expected more than once per epoch; "
            f"largest row factor {self.max_row_factor:.2f}",
            f"  {'bucket':<7} {'labels':>6} {'positives/epoch before':>23} {'after':>12} "
            f"{'share before':>13} {'after':>7} {'gain':>6}",
        ]
        for r in self.bucket_table():
            g = "-" if r["gain"] is None else f"{r['gain']:.2f}x"
            lines.append(
                f"  {r['bucket']:<7} {r['labels']:>6} {r['positives_before']:>23,.0f} "
                f"{r['positives_after']:>12,.0f} {r['share_before']:>13.1%} "
                f"{r['share_after']:>7.1%} {g:>6}"
            )
        gain = self.gain
        seen = np.flatnonzero(~np.isnan(gain))
        if top and seen.size:
            order = seen[np.argsort(-gain[seen], kind="stable")][:top]
            most = ", ".join(f"{self.names[i]} {gain[i]:.1f}x" for i in order)
            lines.append(f"  most boosted labels: {most}")
        return "\n".join(lines)


def _exposure(
    lm: LabelMatrix,
    row_expect: np.ndarray,
    *,
    method: str,
    params: dict[str, Any],
    label_factors: np.ndarray,
    head_min: int,
    tail_max: int,
) -> LabelExposure:
    counts = lm.counts()
    rows = np.repeat(np.arange(lm.n_rows), lm.row_sizes())
    after = np.bincount(lm.matrix.indices, weights=row_expect[rows], minlength=lm.n_labels)
    return LabelExposure(
        method=method,
        params=params,
        n_rows=lm.n_rows,
        expected_epoch_length=float(row_expect.sum()),
        rows_repeated=int((row_expect > 1.0).sum()),
        max_row_factor=float(row_expect.max()),
        names=lm.names,
        buckets=label_buckets(counts, head_min=head_min, tail_max=tail_max),
        label_factors=label_factors,
        before=counts.astype(np.float64),
        after=after,
        head_min=head_min,
        tail_max=tail_max,
    )


def repeat_exposure(
    Y: Any,
    threshold: float,
    power: float = 0.5,
    max_repeat: float | None = None,
    *,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
) -> LabelExposure:
    """What repeat-factor sampling does to label exposure, before training.

    The expected count of row ``i`` in an epoch is its factor ``r_i`` (stochastic rounding
    is unbiased), so label ``c`` is expected ``sum_{i has c} r_i`` times per epoch, against
    ``count(c)`` times in a plain epoch. Frequent labels that co-occur with rare ones ride
    along with the repeated rows; the bucket table shows how much.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
    threshold, power, max_repeat
        As in :func:`repeat_factors`.
    head_min, tail_max : int
        Bucket bounds, as in :func:`mlbalance.buckets.label_buckets`.

    Returns
    -------
    LabelExposure
    """
    t, p, m = check_repeat_parameters(threshold, power, max_repeat)
    lm = _nonempty(Y)
    per_label = label_repeat_factors(lm.counts(), lm.n_rows, t, p, m)
    factors = _row_max(lm, per_label, 1.0)
    return _exposure(
        lm,
        factors,
        method="repeat",
        params={"threshold": t, "power": p, "max_repeat": m},
        label_factors=per_label,
        head_min=head_min,
        tail_max=tail_max,
    )


def class_aware_exposure(
    Y: Any,
    num_samples: int | None = None,
    *,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
) -> LabelExposure:
    """What class-aware sampling (``num_samples`` draws per epoch) does to label exposure.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
    num_samples : int, optional
        Draws per epoch; default the number of rows.
    head_min, tail_max : int
        Bucket bounds, as in :func:`mlbalance.buckets.label_buckets`.

    Returns
    -------
    LabelExposure
    """
    lm = _nonempty(Y)
    n = lm.n_rows if num_samples is None else int(num_samples)
    if n <= 0:
        raise ParameterError(f"Invalid num_samples {num_samples!r}, num_samples should be > 0")
    expect = class_aware_row_probabilities(lm) * n
    return _exposure(
        lm,
        expect,
        method="class_aware",
        params={"num_samples": n},
        label_factors=np.full(lm.n_labels, np.nan),
        head_min=head_min,
        tail_max=tail_max,
    )
