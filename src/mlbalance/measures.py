"""Imbalance measures of a multilabel dataset, computed from its CSR label matrix.

The definitions are those of the R package **mldr** (Charte & Charte, "Working with
multilabel datasets in R: the mldr package", The R Journal 7(2), 2015), the reference
implementation, and of the papers that introduced them:

* IRLbl, MeanIR, CVIR — Charte, Rivera, del Jesus & Herrera, "Addressing imbalance in
  multilabel classification: measures and random resampling algorithms",
  Neurocomputing 163 (2015). ``IRLbl(l) = max_l' count(l') / count(l)``; MeanIR is the mean
  IRLbl; CVIR the (sample) standard deviation of IRLbl divided by MeanIR.
* SCUMBLE — Charte, Rivera, del Jesus & Herrera, "Dealing with difficult minority labels
  in imbalanced multilabel data sets", Neurocomputing 326 (2019) (first in HAIS 2014).
  For a row *i* with labels ``L_i``: ``SCUMBLE_i = 1 - (prod IRLbl)^(1/|L_i|) / mean IRLbl``
  (the Atkinson index of the row's IRLbls), 0 for a row without labels. The dataset's
  SCUMBLE is the mean over all rows; a label's SCUMBLE the mean over the rows that have it.
* TCS (theoretical complexity score) — Charte et al., "Tips, guidelines and tools for
  managing multi-label datasets: the mldr.datasets R package and the Cometa data
  repository", Neurocomputing 289 (2018): ``log(features * labels * distinct labelsets)``.

Every value here equals mldr's (R/measures.R) on the ten MULAN sets in
``../shared/datasets/mulan`` to every stored digit: of the 2,086 values mldr stores there (15
significant digits), 2,083 print identically and three per-label SCUMBLE CVs differ by one in the
15th digit; the tests check all of them to 1e-14 relative. To get there the computation follows
R's: the row SCUMBLE is the product of the IRLbls to the power ``1/k`` (so cancellation in
``1 - ratio`` rounds the same way), sums are compensated to stand in for R's ``long double``
accumulators, and means get R's refinement pass. Where the product overflows or underflows (rows
with many very rare labels, which mldr would turn into ``NaN``) the geometric mean comes from logs.

Where mldr's behaviour is not sensible, mlbalance deviates, and says so:

* A label with **no rows** (possible when a vocabulary is shared by several splits) gets
  ``IRLbl = inf`` here; mldr sets it to 0, which pulls MeanIR *down* as labels vanish.
  MeanIR, MaxIR and CVIR are taken over the labels that have at least one row (on data
  without absent labels this is exactly mldr's value). JSON output writes ``inf`` as null.
* The dataset SCUMBLE CV is 0 when every row's SCUMBLE is 0 (mldr: ``0/0 = NaN``). A label's
  SCUMBLE CV is NaN for a label with fewer than two rows (as mldr's ``NA``) and 0 when its mean
  SCUMBLE is 0 (as mldr).
* TCS needs the number of input features. For text data there is no such number: pass
  ``n_features=None`` and the features factor is left out (``log(labels * labelsets)``).

Everything works on the CSR arrays and never densifies over rows: the row-wise passes (row
SCUMBLE with its per-label sums, the per-label deviations, labelset codes) are
compiled loops (:mod:`mlbalance._measures_core`, numba), each one sequential pass over the
stored labels. Distinct labelsets are counted exactly: each row's sorted label ids are packed
into one integer (base ``n_labels``, one group per row size) while that fits in 64 bits and the
codes are radix-sorted; longer rows are hashed and every hash group is verified row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbalance._pairs import cooccurrence, top_pairs
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "LabelsetStats",
    "Measures",
    "cardinality",
    "compute_measures",
    "cooccurrence",
    "cvir",
    "density",
    "irlbl",
    "irlbl_of_counts",
    "label_counts",
    "label_frequencies",
    "label_scumble",
    "labelset_stats",
    "max_ir",
    "mean_ir",
    "mean_ir_of_counts",
    "minority_labels",
    "rare_for_folds",
    "rare_for_test",
    "row_scumble",
    "rows_without_labels",
    "scumble",
    "scumble_cv",
    "tcs",
    "top_pairs",
]


# --------------------------------------------------------------------------------------------
# counts and imbalance ratios
# --------------------------------------------------------------------------------------------
def _counts(lm: LabelMatrix) -> np.ndarray:
    from mlbalance._measures_core import label_counts as _kernel

    return _kernel(lm.matrix.indices, lm.n_labels)


def _lm(y: Any) -> LabelMatrix:
    lm = as_label_matrix(y)
    if lm.n_rows == 0:
        raise InputError("the dataset is empty: no rows to measure")
    return lm


def label_counts(y: Any) -> np.ndarray:
    """Rows per label (int64), in column order."""
    return _counts(as_label_matrix(y))


def label_frequencies(y: Any) -> np.ndarray:
    """Fraction of rows that carry each label (mldr's ``freq``)."""
    lm = _lm(y)
    return _counts(lm) / lm.n_rows


def rows_without_labels(y: Any) -> int:
    """Number of rows with an empty labelset."""
    return int(np.count_nonzero(as_label_matrix(y).row_sizes() == 0))


def cardinality(y: Any) -> float:
    """Label cardinality: the mean number of labels per row."""
    lm = _lm(y)
    return lm.nnz / lm.n_rows


def density(y: Any) -> float:
    """Label density: cardinality divided by the number of labels."""
    lm = _lm(y)
    if lm.n_labels == 0:
        raise InputError("the label vocabulary is empty: density is undefined")
    return lm.nnz / lm.n_rows / lm.n_labels


def irlbl_of_counts(counts: np.ndarray) -> np.ndarray:
    """IRLbl from label counts: ``max count / count``, ``inf`` for a label with no row.

    What :func:`irlbl` computes from a label matrix; the resamplers call it on counts that
    change as they add or remove rows, so that every IRLbl in mlbalance is this one.
    """
    return _irlbl_from_counts(counts)


def mean_ir_of_counts(counts: np.ndarray) -> float:
    """MeanIR from label counts: the mean IRLbl over labels with rows (NaN when none has)."""
    return _ir_summary(_irlbl_from_counts(counts))[0]


def _irlbl_from_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    top = counts.max() if counts.size else 0
    out = np.full(counts.shape, np.inf)
    present = counts > 0
    out[present] = top / counts[present]
    return out


def irlbl(y: Any) -> np.ndarray:
    """Imbalance ratio per label: ``max count / count(label)``.

    The most frequent label has 1, rarer labels more. A label with no rows gets ``inf``
    (mldr gives 0; see the module notes).
    """
    return _irlbl_from_counts(label_counts(y))


def _ir_summary(ir: np.ndarray) -> tuple[float, float, float]:
    """MeanIR, MaxIR and CVIR over the finite IRLbls (labels with at least one row)."""
    from mlbalance._measures_core import r_mean, r_sd

    finite = np.ascontiguousarray(ir[np.isfinite(ir)], dtype=np.float64)
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(r_mean(finite))
    mx = float(finite.max())
    cv = float(r_sd(finite, mean) / mean) if finite.size > 1 else 0.0
    return mean, mx, cv


def mean_ir(y: Any) -> float:
    """MeanIR: the mean IRLbl over the labels that have rows."""
    return _ir_summary(irlbl(y))[0]


def max_ir(y: Any) -> float:
    """MaxIR: the largest IRLbl over the labels that have rows."""
    return _ir_summary(irlbl(y))[1]


def cvir(y: Any) -> float:
    """CVIR: sample standard deviation of IRLbl divided by MeanIR (labels with rows)."""
    return _ir_summary(irlbl(y))[2]


def minority_labels(y: Any) -> np.ndarray:
    """Boolean mask of minority labels: present labels whose IRLbl exceeds MeanIR.

    This is the minority set of ML-ROS / ML-RUS / MLSMOTE (Charte et al., 2015).
    """
    ir = irlbl(y)
    mean = _ir_summary(ir)[0]
    return np.isfinite(ir) & (ir > mean)


# --------------------------------------------------------------------------------------------
# SCUMBLE
# --------------------------------------------------------------------------------------------
def _row_scumble_sums(lm: LabelMatrix, ir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row SCUMBLE and its per-label sums (one compiled pass)."""
    from mlbalance._measures_core import row_scumble_and_label_sums

    m = lm.matrix
    return row_scumble_and_label_sums(m.indptr, m.indices, ir)


def _row_scumble_from(lm: LabelMatrix, ir: np.ndarray) -> np.ndarray:
    return _row_scumble_sums(lm, ir)[0]


def row_scumble(y: Any) -> np.ndarray:
    """SCUMBLE of each row (0 for a row without labels)."""
    lm = _lm(y)
    return _row_scumble_from(lm, _irlbl_from_counts(_counts(lm)))


def _scumble_summary(rows: np.ndarray) -> tuple[float, float]:
    from mlbalance._measures_core import r_mean, r_sd

    mean = float(r_mean(rows))
    if rows.size < 2 or mean == 0.0:
        return mean, 0.0
    return mean, float(r_sd(rows, mean) / mean)


def scumble(y: Any) -> float:
    """SCUMBLE of the dataset: the mean row SCUMBLE (over all rows, empty rows count 0)."""
    return _scumble_summary(row_scumble(y))[0]


def scumble_cv(y: Any) -> float:
    """Coefficient of variation (sample sd / mean) of the row SCUMBLE; 0 when the mean is 0."""
    return _scumble_summary(row_scumble(y))[1]


def _label_scumble_from(
    lm: LabelMatrix, rows: np.ndarray, counts: np.ndarray, sums: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    from mlbalance._measures_core import divide_each, label_deviation_sums

    m = lm.matrix
    if sums is None:
        sums = _row_scumble_sums(lm, _irlbl_from_counts(counts))[1]
    n = np.maximum(counts, 1).astype(np.float64)
    # R's mean(): sum / n, then add the mean of the deviations from it
    first = np.where(counts > 0, sums / n, 0.0)
    dev, dev_c = label_deviation_sums(m.indptr, m.indices, rows, first, 1)
    mean = first + (dev + dev_c) / n
    mean[counts == 0] = 0.0
    # R's sd(): squared deviations from that mean, over n - 1
    sq, sq_c = label_deviation_sums(m.indptr, m.indices, rows, mean, 2)
    var = divide_each(sq, sq_c, np.maximum(counts - 1, 1).astype(np.float64))
    cv = np.full(lm.n_labels, np.nan)
    many = counts > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(var)
        cv[many] = np.where(mean[many] == 0.0, 0.0, sd[many] / mean[many])
    return mean, cv


def label_scumble(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """SCUMBLE per label and its coefficient of variation.

    Returns
    -------
    mean : numpy.ndarray
        Mean row SCUMBLE over the rows that carry the label (0 for a label with no rows).
    cv : numpy.ndarray
        Sample sd / mean over those rows; NaN for a label with fewer than 2 rows, 0 when
        the mean is 0 (both as mldr).
    """
    lm = _lm(y)
    counts = _counts(lm)
    rows, sums = _row_scumble_sums(lm, _irlbl_from_counts(counts))
    return _label_scumble_from(lm, rows, counts, sums)


# --------------------------------------------------------------------------------------------
# labelsets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelsetStats:
    """Distinct labelsets (mldr's ``num.labelsets``, ``num.single.labelsets``, ``max.frequency``).

    The empty labelset counts as one labelset when some row has no label, as in mldr.
    """

    distinct: int
    single: int
    max_frequency: int


def _rows_as_matrix(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, k: int
) -> np.ndarray:
    """Label ids of *rows* (each with exactly *k* labels) as an ``(len(rows), k)`` int64 array."""
    pos = indptr[rows][:, None] + np.arange(k, dtype=np.int64)[None, :]
    return indices[pos].astype(np.int64)


def _labelset_group_counts(lm: LabelMatrix) -> list[np.ndarray]:
    """Row count of every distinct labelset, as one array per row size."""
    from mlbalance._measures_core import pack_labelsets, run_lengths_of_sorted

    m = lm.matrix
    if not m.has_sorted_indices:  # a labelset's code needs its ids in order
        m = m.sorted_indices()
    indptr, indices = m.indptr, m.indices
    sizes = np.diff(indptr)
    n_labels = max(lm.n_labels, 1)
    by_size = np.bincount(sizes)
    out: list[np.ndarray] = []
    if by_size[0]:
        out.append(np.array([by_size[0]], dtype=np.int64))
    # rows whose label ids pack into 64 bits: exact integer codes, one group per size
    fits = 1
    while fits + 1 < by_size.size and n_labels ** (fits + 1) < 1 << 64:
        fits += 1
    fits = min(fits, by_size.size - 1)
    offsets = np.zeros(fits + 2, dtype=np.int64)
    offsets[2:] = np.cumsum(by_size[1 : fits + 1])
    codes = pack_labelsets(indptr, indices, n_labels, offsets, fits)
    for k in range(1, fits + 1):
        if not by_size[k]:
            continue
        code = codes[offsets[k] : offsets[k + 1]]
        if n_labels**k <= 1 << 22:
            c = np.bincount(code.astype(np.intp), minlength=n_labels**k)
            out.append(c[c > 0].astype(np.int64))
            continue
        out.append(run_lengths_of_sorted(code, int(n_labels**k - 1).bit_length()))
    # larger rows: verified hashes
    if by_size.size > fits + 1:
        big = np.flatnonzero(sizes > fits)
        big = big[np.argsort(sizes[big], kind="stable")]
        bounds = np.cumsum(by_size[fits + 1 :])
        for k, rows in zip(range(fits + 1, by_size.size), np.split(big, bounds[:-1]), strict=True):
            if rows.size:
                out.append(_hashed_counts(indptr, indices, rows, k))
    return out


def _hashed_counts(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Labelset counts of rows with *k* labels (too many to pack) by a verified 64-bit hash."""
    mat = _rows_as_matrix(indptr, indices, rows, k)
    for attempt in range(4):
        rng = np.random.default_rng(0x5EED + attempt)
        keys = rng.integers(0, np.iinfo(np.uint64).max, size=int(mat.max()) + 1, dtype=np.uint64)
        h = keys[mat].sum(axis=1, dtype=np.uint64)
        _uniq, first, inverse, counts = np.unique(
            h, return_index=True, return_inverse=True, return_counts=True
        )
        # Verify: every row equals the first row with its hash.
        if np.array_equal(mat, mat[first[inverse]]):
            return counts.astype(np.int64)
    # Four independent hash families collided: count exactly (never observed in practice).
    return np.unique(mat, axis=0, return_counts=True)[1].astype(np.int64)


def labelset_stats(y: Any) -> LabelsetStats:
    """Count distinct labelsets, those seen on exactly one row, and the most frequent one's rows."""
    lm = _lm(y)
    groups = _labelset_group_counts(lm)
    allc = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
    return LabelsetStats(
        distinct=int(allc.size),
        single=int(np.count_nonzero(allc == 1)),
        max_frequency=int(allc.max()) if allc.size else 0,
    )


def tcs(y: Any, n_features: int | None = None) -> float:
    """Theoretical complexity score ``log(features * labels * distinct labelsets)``.

    Parameters
    ----------
    y : LabelMatrix or array-like
        The labels.
    n_features : int, optional
        Number of input features (mldr's ``num.inputs``). ``None`` (text data) leaves the
        factor out.
    """
    lm = _lm(y)
    return _tcs(n_features, lm.n_labels, labelset_stats(lm).distinct)


def _tcs(n_features: int | None, n_labels: int, distinct: int) -> float:
    if n_features is not None and n_features < 1:
        raise ParameterError(f"n_features must be >= 1, got {n_features}", param="n_features")
    product = (n_features or 1) * n_labels * distinct
    return math.log(product) if product > 0 else math.nan


# --------------------------------------------------------------------------------------------
# labels too rare for splits
# --------------------------------------------------------------------------------------------
def rare_for_folds(counts: np.ndarray, folds: int) -> np.ndarray:
    """Mask of labels with fewer rows than *folds*: at least one fold's test part lacks them."""
    if int(folds) < 2:
        raise ParameterError(f"folds must be >= 2, got {folds}", param="folds")
    return np.asarray(counts) < int(folds)


def rare_for_test(counts: np.ndarray, test_size: float) -> np.ndarray:
    """Mask of labels that a stratified split of fraction *test_size* leaves out of a part.

    A stratified test part gets about ``count * test_size`` rows of a label, so a label needs
    ``count * test_size >= 1`` to appear in the test part, and at least one row must be
    left for the training part (``count * (1 - test_size) >= 1``).
    """
    if not 0.0 < float(test_size) < 1.0:
        raise ParameterError(
            f"test_size must be a fraction in (0, 1), got {test_size}", param="test_size"
        )
    c = np.asarray(counts, dtype=np.float64)
    eps = 1e-9
    return (c * test_size < 1.0 - eps) | (c * (1.0 - test_size) < 1.0 - eps)


# --------------------------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measures:
    """All measures of one label matrix (see :func:`compute_measures`)."""

    rows: int
    labels: int
    rows_without_labels: int
    cardinality: float
    density: float
    labelsets: LabelsetStats
    counts: np.ndarray
    frequency: np.ndarray
    irlbl: np.ndarray
    mean_ir: float
    max_ir: float
    cvir: float
    scumble: float
    scumble_cv: float
    label_scumble: np.ndarray
    label_scumble_cv: np.ndarray
    tcs: float
    n_features: int | None
    minority: np.ndarray = field(repr=False)


def compute_measures(y: Any, *, n_features: int | None = None) -> Measures:
    """Every dataset and per-label measure in one pass over the label matrix.

    Parameters
    ----------
    y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The labels.
    n_features : int, optional
        Number of input features, for TCS (``None`` leaves that factor out).

    Returns
    -------
    Measures
    """
    lm = _lm(y)
    if lm.n_labels == 0:
        raise InputError("the label vocabulary is empty: nothing to measure")
    counts = _counts(lm)
    ir = _irlbl_from_counts(counts)
    mean, mx, cv = _ir_summary(ir)
    rows, sums = _row_scumble_sums(lm, ir)
    sc_mean, sc_cv = _scumble_summary(rows)
    lab_sc, lab_cv = _label_scumble_from(lm, rows, counts, sums)
    ls = labelset_stats(lm)
    sizes = lm.row_sizes()
    return Measures(
        rows=lm.n_rows,
        labels=lm.n_labels,
        rows_without_labels=int(np.count_nonzero(sizes == 0)),
        cardinality=lm.nnz / lm.n_rows,
        density=lm.nnz / lm.n_rows / lm.n_labels,
        labelsets=ls,
        counts=counts,
        frequency=counts / lm.n_rows,
        irlbl=ir,
        mean_ir=mean,
        max_ir=mx,
        cvir=cv,
        scumble=sc_mean,
        scumble_cv=sc_cv,
        label_scumble=lab_sc,
        label_scumble_cv=lab_cv,
        tcs=_tcs(n_features, lm.n_labels, ls.distinct),
        n_features=n_features,
        minority=np.isfinite(ir) & (ir > mean),
    )
