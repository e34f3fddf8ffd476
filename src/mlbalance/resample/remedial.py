"""REMEDIAL: decouple rows that mix rare and frequent labels.

Charte, F., Rivera, A. J., del Jesus, M. J. and Herrera, F. (2019). "Dealing with difficult
minority labels in imbalanced multilabel data sets". *Neurocomputing* 326-327, 39-53.
doi:10.1016/j.neucom.2016.08.158 (Algorithm REMEDIAL).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from mlbalance import measures
from mlbalance.labels import LabelMatrix
from mlbalance.resample.base import BaseResampler, Resampled, irlbl_and_mean_ir

__all__ = ["REMEDIAL"]


class REMEDIAL(BaseResampler):
    """REsampling MultilabEl datasets by Decoupling highly ImbAlanced Labels (Charte et al. 2019).

    Every row whose SCUMBLE (the concurrence of its labels' imbalance levels: 1 - geometric
    mean / arithmetic mean of their IRLbl) exceeds the dataset's mean SCUMBLE is split in two:
    the original row keeps its frequent labels (IRLbl <= MeanIR) and a copy of the row, added
    to the dataset, gets its rare labels (IRLbl > MeanIR). Features (or text) are copied, so the
    output is a list of source rows plus a new label matrix.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None
        Accepted for the common interface; REMEDIAL is deterministic.

    Attributes
    ----------
    sample_indices_ : numpy.ndarray of int64
        Output rows as input row indices: ``0..n-1`` (relabelled in place where decoupled)
        followed by the decoupled copies.
    decoupled_rows_ : numpy.ndarray of int64
        The input rows that were split.
    result_ : Resampled
        ``result_.labels`` holds the new labels; ``result_.relabelled`` marks changed rows.

    Notes
    -----
    As in the paper and the authors' ``mldr::remedial``: the threshold is the mean SCUMBLE,
    minority labels are those with IRLbl > MeanIR, the original keeps the majority labels and
    the clone the minority labels. IRLbl, MeanIR, the row SCUMBLE and its mean come from
    :mod:`mlbalance.measures` (mldr's values), so the threshold is the SCUMBLE that
    ``mlbalance analyse`` prints. Deviation: a row above the threshold whose labels are all
    minority (or all majority) is left unchanged, because splitting it would create a row with
    no label at all (``mldr`` creates such rows).
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"random_state": None}

    def __init__(self, *, random_state: Any = None) -> None:
        self.random_state = random_state

    def _resample(self, X: Any, labels: LabelMatrix, rng: np.random.Generator) -> Resampled:
        n = labels.n_rows
        counts = labels.counts()
        ir, target = irlbl_and_mean_ir(counts)
        # the row SCUMBLE and its mean of mlbalance.measures: the figures analyse prints
        scumble = measures.row_scumble(labels) if n else np.zeros(0)
        threshold = float(measures.scumble(labels)) if n else 0.0
        minority = np.isfinite(ir) & (ir > target)
        m = labels.matrix
        is_min = minority[m.indices].astype(np.int64)
        row_of = np.repeat(np.arange(n), np.diff(m.indptr))
        n_min = np.bincount(row_of, weights=is_min, minlength=n).astype(np.int64)
        n_maj = np.diff(m.indptr) - n_min
        split = (scumble > threshold) & (n_min > 0) & (n_maj > 0)
        rows = np.flatnonzero(split).astype(np.int64)
        self.decoupled_rows_ = rows
        self.scumble_threshold_ = threshold
        self.mean_ir_ = target
        keep_mask = ~(split[row_of] & minority[m.indices])  # originals drop their rare labels
        kept = sp.csr_matrix(
            (
                m.data[keep_mask],
                m.indices[keep_mask],
                np.concatenate([[0], np.cumsum(np.bincount(row_of[keep_mask], minlength=n))]),
            ),
            shape=m.shape,
        )
        rare = sp.csr_matrix(m[rows].multiply(minority[np.newaxis, :].astype(np.uint8)))
        rare.eliminate_zeros()
        new = sp.vstack([kept, rare], format="csr").astype(np.uint8)
        new.eliminate_zeros()
        new.sort_indices()
        idx = np.concatenate([np.arange(n, dtype=np.int64), rows])
        relabelled = np.zeros(len(idx), dtype=bool)
        relabelled[rows] = True
        relabelled[n:] = True
        return Resampled(idx, LabelMatrix(new, labels.names), n, relabelled=relabelled)
