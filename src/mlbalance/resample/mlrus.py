"""ML-RUS: multilabel random undersampling by label bags.

Charte, F., Rivera, A. J., del Jesus, M. J. and Herrera, F. (2015). "Addressing imbalance in
multilabel classification: Measures and random resampling algorithms". *Neurocomputing* 163,
3-16. doi:10.1016/j.neucom.2014.08.091 (Algorithm ML-RUS).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from numba import njit

from mlbalance.labels import LabelMatrix
from mlbalance.resample._bags import csr_arrays, label_bags
from mlbalance.resample.base import BaseResampler, Interval, Resampled, irlbl_and_mean_ir

__all__ = ["MLRUS"]


@njit(cache=True)
def _find(indices, lo, hi, value):  # pragma: no cover - compiled
    """Position of *value* in the sorted ``indices[lo:hi]`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _mlrus_kernel(
    indptr,
    indices,
    counts,
    bag_of_label,
    bag_labels,
    bag_ptr,
    bag_rows,
    pos,
    target_ir,
    n_delete,
    u,
):  # pragma: no cover - compiled
    """Delete one random row of each majority bag in turn (see :class:`MLRUS`).

    ``pos[p]`` is, for CSR entry ``p`` (row r, label l) with l a majority label, the position
    of r within l's bag; deleting a row swap-removes it from every majority bag it is in.
    """
    nb = bag_labels.shape[0]
    n = indptr.shape[0] - 1
    deleted = np.zeros(n, dtype=np.bool_)
    live = np.empty(nb, dtype=np.int64)
    for b in range(nb):
        live[b] = bag_ptr[b + 1] - bag_ptr[b]
    left_at = np.full(nb, -1, dtype=np.int64)
    active = np.ones(nb, dtype=np.bool_)
    n_active = nb
    maxc = 0
    for i in range(counts.shape[0]):
        if counts[i] > maxc:
            maxc = counts[i]
    done = 0
    while done < n_delete and n_active > 0:
        for b in range(nb):
            if done >= n_delete:
                break
            if not active[b]:
                continue
            lab = bag_labels[b]
            if live[b] == 0 or counts[lab] == 0 or maxc / counts[lab] >= target_ir:
                active[b] = False
                left_at[b] = done
                n_active -= 1
                continue
            j = int(u[done] * live[b])
            if j >= live[b]:
                j = live[b] - 1
            r = bag_rows[bag_ptr[b] + j]
            deleted[r] = True
            done += 1
            recompute = False
            for p in range(indptr[r], indptr[r + 1]):
                lb = indices[p]
                if counts[lb] == maxc:
                    recompute = True
                counts[lb] -= 1
                bb = bag_of_label[lb]
                if bb >= 0:
                    at = pos[p]
                    last = bag_ptr[bb] + live[bb] - 1
                    s = bag_rows[last]
                    bag_rows[bag_ptr[bb] + at] = s
                    bag_rows[last] = r
                    q = _find(indices, indptr[s], indptr[s + 1], lb)
                    pos[q] = at
                    live[bb] -= 1
            if recompute:
                maxc = 0
                for i in range(counts.shape[0]):
                    if counts[i] > maxc:
                        maxc = counts[i]
            if live[b] == 0 or counts[lab] == 0 or maxc / counts[lab] >= target_ir:
                active[b] = False
                left_at[b] = done
                n_active -= 1
    return deleted, left_at


class MLRUS(BaseResampler):
    """Multilabel random undersampling (ML-RUS, Charte et al. 2015).

    The majority labels are those whose IRLbl is below the dataset's MeanIR. Each majority
    label's *bag* holds its rows. The algorithm deletes a random row of each bag in turn; a
    deleted row leaves every bag it belongs to, and every label it has loses one row. A bag
    leaves once its label's IRLbl rises to MeanIR or above; the algorithm stops after
    ``percentage`` % of the dataset's rows have been deleted or when no bag is left.

    Parameters
    ----------
    percentage : float, default 25
        Rows to delete, as a percentage of the input rows (``floor(n * P / 100)``), in (0, 100).
    random_state : int, numpy.random.Generator or None
        Seed of the one generator used for the whole call.

    Attributes
    ----------
    sample_indices_ : numpy.ndarray of int64
        The kept input rows, ascending.
    majority_labels_ : numpy.ndarray of int64
        The majority label ids (the bags).
    bag_left_at_ : numpy.ndarray of int64
        Per bag, the number of deletions made when it left (-1 if it never left).
    irlbl_ : numpy.ndarray of float
        IRLbl of every label in the input (``inf`` for a label with no row).
    deletions_asked_ : int
        ``floor(n * percentage / 100)``; fewer are made when every bag leaves first (the
        result's ``notes`` say so), and a warning says when MeanIR or MaxIR went up.

    Notes
    -----
    Follows the paper's pseudo-code (MeanIR fixed on the input; IRLbl, including the max count,
    recomputed after each deletion) with the same stated deviations as :class:`MLROS`: the stop
    is exact at ``floor(n * P / 100)`` deletions, and a bag whose IRLbl already reached MeanIR
    (through rows deleted for other bags) leaves at its turn without one more deletion. Like
    the paper, it does not protect minority labels that co-occur in a deleted row.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "percentage": Interval(float, 0, 100, closed="neither"),
        "random_state": None,
    }

    def __init__(self, *, percentage: float = 25.0, random_state: Any = None) -> None:
        self.percentage = percentage
        self.random_state = random_state

    def _resample(self, X: Any, labels: LabelMatrix, rng: np.random.Generator) -> Resampled:
        n = labels.n_rows
        counts = labels.counts()
        ir, target = irlbl_and_mean_ir(counts)
        self.irlbl_ = ir
        majority = np.flatnonzero(np.isfinite(ir) & (ir < target)).astype(np.int64)
        n_delete = int(np.floor(n * float(self.percentage) / 100.0 + 1e-9))
        self.majority_labels_ = majority
        self.mean_ir_ = target
        self.deletions_asked_ = n_delete
        if len(majority) == 0 or n_delete == 0:
            self.bag_left_at_ = np.zeros(0, dtype=np.int64)
            return Resampled(np.arange(n, dtype=np.int64), labels, n)
        bag_ptr, bag_rows = label_bags(labels, majority)
        indptr, indices = csr_arrays(labels)
        bag_of_label = np.full(labels.n_labels, -1, dtype=np.int64)
        bag_of_label[majority] = np.arange(len(majority))
        # position of each row within its labels' bags, per CSR entry (bags list rows ascending)
        order = np.argsort(indices, kind="stable")
        starts = np.zeros(labels.n_labels + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        pos = np.empty(len(indices), dtype=np.int64)
        pos[order] = np.arange(len(indices), dtype=np.int64) - starts[indices[order]]
        u = rng.random(n_delete)
        deleted, left_at = _mlrus_kernel(
            indptr,
            indices,
            counts.astype(np.int64).copy(),
            bag_of_label,
            majority,
            bag_ptr,
            bag_rows.copy(),
            pos,
            float(target),
            n_delete,
            u,
        )
        self.bag_left_at_ = left_at
        idx = np.flatnonzero(~deleted).astype(np.int64)
        return Resampled(idx, labels.take(idx), n)

    def _notes(self, labels: LabelMatrix, result: Resampled) -> Iterator[str]:
        made, asked = result.n_input - result.n_output, self.deletions_asked_
        wanted = (
            f"asked for {float(self.percentage):g}% of {labels.n_rows:,} rows = {asked:,} deletions"
        )
        majority = self.majority_labels_
        if asked == 0:
            yield f"ML-RUS deleted nothing: {wanted}"
        elif not len(majority):
            yield f"ML-RUS deleted nothing: no label has IRLbl < MeanIR ({self.mean_ir_:.4g}); {wanted}"
        elif made < asked:
            ir, _ = irlbl_and_mean_ir(result.labels.counts())
            reached = int(np.count_nonzero(ir[majority] >= self.mean_ir_))
            yield (
                f"ML-RUS stopped after {made:,} deletion(s): every majority bag left "
                f"({reached:,} of {len(majority):,} reached MeanIR {self.mean_ir_:.4g}, the "
                f"others ran out of rows); {wanted}"
            )
        kept = np.zeros(result.n_input, dtype=bool)
        kept[result.indices] = True
        minority = np.flatnonzero(np.isfinite(self.irlbl_) & (self.irlbl_ > self.mean_ir_))
        carried = labels.matrix[~kept][:, minority].getnnz(axis=1) > 0 if made else np.zeros(0)
        if np.count_nonzero(carried):
            yield (
                f"{int(np.count_nonzero(carried)):,} of the {made:,} deleted rows also carried "
                "minority labels (ML-RUS does not protect them)"
            )
