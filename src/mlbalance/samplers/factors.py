"""Repeat factors, the repeat-factor threshold and row weights (numpy only, no torch).

Everything here works on a :class:`~mlbalance.labels.LabelMatrix` (or anything
:func:`~mlbalance.labels.as_label_matrix` accepts) and returns numpy arrays, so
``mlbalance analyse`` and the demo can show what a sampler will do before anyone imports
torch. The label-exposure diagnostics (:func:`repeat_exposure`, :func:`class_aware_exposure`,
:class:`LabelExposure`) live in :mod:`mlbalance.samplers.exposure` and are importable from here.

References
----------
Gupta, Dollár and Girshick (2019), "LVIS: A Dataset for Large Vocabulary Instance
Segmentation", CVPR, appendix B.2 (repeat-factor sampling).
Shen, Lin and Huang (2016), "Relay Backpropagation for Effective Learning of Deep
Convolutional Neural Networks", ECCV (class-aware sampling).
Mahajan et al. (2018), "Exploring the Limits of Weakly Supervised Pretraining", ECCV, and
Kang et al. (2020), "Decoupling Representation and Classifier for Long-Tailed Recognition",
ICLR (square-root sampling, which repeat-factor sampling with ``power=0.5`` becomes for every
label below the threshold).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mlbalance._params import Interval, Options, validate_params
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "AUTO_GROWTH",
    "REPEAT_CONSTRAINTS",
    "auto_threshold",
    "check_repeat_parameters",
    "class_aware_row_probabilities",
    "expected_epoch_growth",
    "label_repeat_factors",
    "repeat_factors",
    "resolve_threshold",
    "row_weights",
    "stochastic_round",
]

# Rows processed per chunk when rounding factors, to keep temporaries small at 10^8 rows.
_CHUNK = 1 << 22

#: The expected epoch growth that ``threshold="auto"`` aims for: the threshold is set so that
#: one sampled epoch holds 1.5x the rows of a plain one (see :func:`auto_threshold`).
AUTO_GROWTH = 1.5

#: Declared constraints of the repeat-factor parameters (:mod:`mlbalance._params`).
REPEAT_CONSTRAINTS: dict[str, Any] = {
    "threshold": (Interval(float, 0, 1, closed="right"), Options(("auto",))),
    "power": Interval(float, 0, None),
    "max_repeat": Interval(float, 1, None, allow_none=True),
}


def check_repeat_parameters(
    threshold: float | str, power: float = 0.5, max_repeat: float | None = None
) -> tuple[float | str, float, float | None]:
    """Validate the repeat-factor parameters against :data:`REPEAT_CONSTRAINTS`.

    Returns
    -------
    threshold : float or "auto"
    power : float
    max_repeat : float or None

    Raises
    ------
    ParameterError
        Naming the parameter: ``threshold`` outside (0, 1] and not ``"auto"``, ``power``
        negative or not finite, ``max_repeat`` < 1.
    """
    validate_params(
        REPEAT_CONSTRAINTS, {"threshold": threshold, "power": power, "max_repeat": max_repeat}
    )
    t = threshold if threshold == "auto" else float(threshold)
    return t, float(power), None if max_repeat is None else float(max_repeat)


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
        As in :func:`repeat_factors`, except that ``threshold="auto"`` is refused (it needs the
        rows, not only the counts: use :func:`auto_threshold`).

    Returns
    -------
    numpy.ndarray of float64
        One factor per label; 1.0 for labels with no row (they never decide a row's factor).

    Warns
    -----
    UserWarning
        When the threshold repeats no row (every label is at least that frequent), with the
        frequency of the rarest label: any threshold above it would act.
    """
    t, p, m = check_repeat_parameters(threshold, power, max_repeat)
    if t == "auto":
        raise ParameterError(
            "threshold='auto' depends on which labels share rows, not on the counts alone: "
            "compute it with auto_threshold(Y) and pass the number",
            param="threshold",
        )
    t = float(t)
    counts = np.asarray(counts, dtype=np.float64)
    if n_rows <= 0:
        raise InputError("label matrix is empty: no rows to sample from")
    out = np.ones(counts.shape, dtype=np.float64)
    seen = counts > 0
    freq = counts[seen] / float(n_rows)
    out[seen] = np.maximum(1.0, (t / freq) ** p)
    if m is not None:
        np.minimum(out, m, out=out)
    if p > 0 and (m is None or m > 1) and seen.any() and not (out > 1).any():
        _warn_no_repeat(t, counts, n_rows)
    return out


def _warn_no_repeat(threshold: float, counts: np.ndarray, n_rows: int) -> None:
    seen = counts[counts > 0]
    rarest = float(seen.min())
    if rarest == float(seen.max()):
        reason = (
            f"every label is on {rarest:,.0f} of {n_rows:,} rows, so there is no imbalance "
            "to correct"
        )
    else:
        reason = (
            f"only labels rarer than the threshold are repeated and the rarest label is on "
            f"{rarest:,.0f} of {n_rows:,} rows (frequency {rarest / n_rows:.4g}); a threshold "
            f"above {rarest / n_rows:.4g} would act, or threshold='auto' (epoch grown "
            f"{AUTO_GROWTH:g}x)"
        )
    warnings.warn(
        f"repeat-factor threshold {threshold:g} repeats no row: {reason}",
        UserWarning,
        stacklevel=4,
    )


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
    Y: Any, threshold: float | str, power: float = 0.5, max_repeat: float | None = None
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
    threshold : float or "auto"
        ``t`` in (0, 1]: labels on fewer than a fraction ``t`` of the rows are repeated.
        With ``power=0.5``, a label at frequency ``t / 4`` has factor 2. ``"auto"``: derived
        from the label frequencies so that an epoch grows 1.5x (:func:`auto_threshold`).
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
        ``threshold`` outside (0, 1] (and not ``"auto"``), negative ``power``,
        ``max_repeat`` < 1.
    InputError
        An empty label matrix.

    Warns
    -----
    UserWarning
        When the threshold repeats no row, with the smallest threshold that would act.

    Examples
    --------
    >>> repeat_factors([["a", "b"], ["a"], []], threshold=0.5).round(4).tolist()
    [1.2247, 1.0, 1.0]
    """
    lm = _nonempty(Y)
    t = resolve_threshold(lm, threshold, power, max_repeat)
    per_label = label_repeat_factors(lm.counts(), lm.n_rows, t, power, max_repeat)
    return _row_max(lm, per_label, 1.0)


def resolve_threshold(
    Y: Any, threshold: float | str, power: float = 0.5, max_repeat: float | None = None
) -> float:
    """The numeric threshold: *threshold* itself, or :func:`auto_threshold` for ``"auto"``."""
    t, p, m = check_repeat_parameters(threshold, power, max_repeat)
    if t == "auto":
        return auto_threshold(Y, power=p, max_repeat=m)
    return float(t)


def _rarest_frequencies(lm: LabelMatrix) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct frequencies of the rows' rarest labels, how many rows each, rows with no label.

    A row's repeat factor depends only on the frequency ``f`` of its rarest label,
    ``min(cap, max(1, (t / f) ** power))``, so the expected epoch length for any ``t`` is a
    weighted sum over at most one term per label.
    """
    freq = lm.counts().astype(np.float64) / float(lm.n_rows)
    rarest = -_row_max(lm, -freq, -math.inf)  # +inf for rows with no label
    labelled = np.isfinite(rarest)
    values, weights = np.unique(rarest[labelled], return_counts=True)
    return values, weights.astype(np.float64), int((~labelled).sum())


def _growth(
    t: float, values: np.ndarray, weights: np.ndarray, empty: int, power: float, cap: float | None
) -> float:
    factors = np.maximum(1.0, (t / values) ** power)
    if cap is not None:
        np.minimum(factors, cap, out=factors)
    return float((weights @ factors + empty) / (weights.sum() + empty))


def expected_epoch_growth(
    Y: Any, threshold: float | str, power: float = 0.5, max_repeat: float | None = None
) -> float:
    """Expected rows of one repeat-factor epoch divided by the rows of a plain epoch.

    The mean of the row factors of :func:`repeat_factors` (stochastic rounding is unbiased):
    1.0 when the threshold repeats nothing, 1.5 when an epoch is expected to hold half as
    many rows again. Training time per epoch grows by the same factor.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
    threshold, power, max_repeat
        As in :func:`repeat_factors` (``"auto"`` accepted).

    Returns
    -------
    float
        >= 1.

    Examples
    --------
    >>> round(expected_epoch_growth([["a", "b"], ["a"], []], threshold=0.5), 4)
    1.0749
    """
    lm = _nonempty(Y)
    t = resolve_threshold(lm, threshold, power, max_repeat)
    values, weights, empty = _rarest_frequencies(lm)
    if values.size == 0:
        return 1.0
    _, p, m = check_repeat_parameters(t, power, max_repeat)
    return _growth(t, values, weights, empty, p, m)


def auto_threshold(
    Y: Any, growth: float = AUTO_GROWTH, power: float = 0.5, max_repeat: float | None = None
) -> float:
    """The repeat-factor threshold derived from the label frequencies (``threshold="auto"``).

    Rule: the threshold ``t`` at which one sampled epoch is expected to hold ``growth`` times
    the rows of a plain epoch (:func:`expected_epoch_growth`), found by bisection; at most
    the frequency of the most frequent label.

    Why this rule. A fixed ``t`` means different things on different data: LVIS's 0.001 (for
    1,203 categories; the frequency of its "frequent" bound, 100 of ~100k images) is below
    every label of GoEmotions (rarest 0.0018), so it repeats nothing there, while on a
    500-label long tail ``t = 0.01`` grows the epoch 1.7x. Between two labels below ``t``
    the ratio of repeat factors is ``(f_a / f_b) ** power`` whatever ``t`` is — square-root
    sampling at the default power — so ``t`` only decides which frequent labels stay at
    factor 1 and how much longer an epoch gets. The epoch growth is the cost a user pays (in
    steps and time) and it is comparable across data sets, so ``t`` is set by it. A quantile
    rule (``t`` = the median label frequency, as the frozen-encoder recipe study used) acts
    on every data set too, but its cost is left to the data: 1.07x on GoEmotions, 1.06x on
    the 25,000-row synthetic set, i.e. little re-balancing. Above the most frequent label's
    frequency every label is repeated and a larger ``t`` only lengthens the epoch without
    changing the balance, so ``t`` stops there (the growth is then below ``growth``).

    Figures (power 0.5, growth 1.5): GoEmotions train (43,410 rows, 28 labels):
    ``t = 0.101``, 27 labels below it, the rarest label (grief, 77 rows) repeated 7.5x;
    synthetic 25,000 rows x 500 labels (``mlbalance synth --rows 25000``): ``t = 0.0070``,
    413 labels below it, tail-bucket positives 4.1x, head 1.5x.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The training labels.
    growth : float, default :data:`AUTO_GROWTH` (1.5)
        Target expected epoch growth, > 1.
    power, max_repeat
        As in :func:`repeat_factors`.

    Returns
    -------
    float
        A threshold in (0, 1]; the most frequent label's frequency when ``growth`` cannot be
        reached below it (for example when every label has the same frequency: then nothing
        is repeated and :func:`repeat_factors` warns).

    Examples
    --------
    >>> round(auto_threshold([["a"], ["a"], ["a"], ["b"]], growth=1.1), 4)
    0.49
    """
    validate_params({"growth": Interval(float, 1, None, closed="neither")}, {"growth": growth})
    lm = _nonempty(Y)
    _, p, m = check_repeat_parameters(0.5, power, max_repeat)
    values, weights, empty = _rarest_frequencies(lm)
    if values.size == 0:
        return 1.0
    lo, hi = float(values[0]), float(values[-1])  # growth(lo) == 1
    if p == 0 or _growth(hi, values, weights, empty, p, m) <= growth:
        return hi
    for _ in range(200):  # bisection in log t: ~1e-15 relative precision long before 200
        mid = math.sqrt(lo * hi)
        if mid <= lo or mid >= hi:
            break
        if _growth(mid, values, weights, empty, p, m) < growth:
            lo = mid
        else:
            hi = mid
    return hi


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
    threshold: float | str | None = None,
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
            raise ParameterError(
                "row_weights(method='repeat') needs a threshold in (0, 1] or 'auto'",
                param="threshold",
            )
        return repeat_factors(Y, threshold, power, max_repeat)
    if method == "class_aware":
        return class_aware_row_probabilities(Y)
    raise ParameterError(
        f"Invalid method {method!r}, method should be 'repeat' or 'class_aware'", param="method"
    )


_EXPOSURE = ("LabelExposure", "class_aware_exposure", "repeat_exposure")


def __getattr__(name: str) -> Any:
    # the diagnostics moved to mlbalance.samplers.exposure, which imports this module
    if name in _EXPOSURE:
        from mlbalance.samplers import exposure

        return getattr(exposure, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
