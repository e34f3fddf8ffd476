"""Label exposure under a sampler: expected positives per label and bucket, before and after.

numpy only (no torch), so ``mlbalance analyse`` and the demo show what a sampler will do to
label exposure before anyone imports torch. Re-exported by :mod:`mlbalance.samplers.factors`
and :mod:`mlbalance.samplers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbalance.buckets import BUCKETS, DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX, label_buckets
from mlbalance.errors import ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.samplers.factors import (
    _nonempty,
    _row_max,
    check_repeat_parameters,
    class_aware_row_probabilities,
    label_repeat_factors,
    resolve_threshold,
)

__all__ = ["LabelExposure", "class_aware_exposure", "repeat_exposure"]

_METHOD_NAMES = {"repeat": "repeat-factor", "class_aware": "class-aware"}


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
        Expected rows drawn per epoch (the sum of the repeat factors); divided by ``n_rows``
        it is the epoch growth (:attr:`epoch_growth`).
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
    def epoch_growth(self) -> float:
        """Expected rows per sampled epoch / rows per plain epoch."""
        return float(self.expected_epoch_length) / self.n_rows

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
            "epoch_length_ratio": self.epoch_growth,
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
    threshold: float | str,
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
        As in :func:`~mlbalance.samplers.factors.repeat_factors` (``"auto"`` accepted; the
        result's ``params["threshold"]`` is then the derived number).
    head_min, tail_max : int
        Bucket bounds, as in :func:`mlbalance.buckets.label_buckets`.

    Returns
    -------
    LabelExposure
    """
    _, p, m = check_repeat_parameters(threshold, power, max_repeat)
    lm = _nonempty(Y)
    t = resolve_threshold(lm, threshold, p, m)
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
