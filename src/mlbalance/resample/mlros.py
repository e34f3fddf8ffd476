"""ML-ROS: multilabel random oversampling by label bags.

Charte, F., Rivera, A. J., del Jesus, M. J. and Herrera, F. (2015). "Addressing imbalance in
multilabel classification: Measures and random resampling algorithms". *Neurocomputing* 163,
3-16. doi:10.1016/j.neucom.2014.08.091 (Algorithm ML-ROS).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from numba import njit

from mlbalance.labels import LabelMatrix
from mlbalance.resample._bags import csr_arrays, label_bags
from mlbalance.resample.base import BaseResampler, Interval, Resampled, irlbl_and_mean_ir

__all__ = ["MLROS"]


@njit(cache=True)
def _mlros_kernel(
    indptr, indices, counts, bag_labels, bag_ptr, bag_rows, target_ir, n_clone, u
):  # pragma: no cover - compiled
    """Clone one random row of each minority bag in turn (see :class:`MLROS`)."""
    nb = bag_labels.shape[0]
    clones = np.empty(n_clone, dtype=np.int64)
    left_at = np.full(nb, -1, dtype=np.int64)
    active = np.ones(nb, dtype=np.bool_)
    n_active = nb
    maxc = 0
    for i in range(counts.shape[0]):
        if counts[i] > maxc:
            maxc = counts[i]
    done = 0
    while done < n_clone and n_active > 0:
        for b in range(nb):
            if done >= n_clone:
                break
            if not active[b]:
                continue
            lab = bag_labels[b]
            if maxc / counts[lab] <= target_ir:  # reached MeanIR through co-occurring clones
                active[b] = False
                left_at[b] = done
                n_active -= 1
                continue
            size = bag_ptr[b + 1] - bag_ptr[b]
            j = int(u[done] * size)
            if j >= size:
                j = size - 1
            r = bag_rows[bag_ptr[b] + j]
            clones[done] = r
            done += 1
            for p in range(indptr[r], indptr[r + 1]):
                lb = indices[p]
                counts[lb] += 1
                if counts[lb] > maxc:
                    maxc = counts[lb]
            if maxc / counts[lab] <= target_ir:
                active[b] = False
                left_at[b] = done
                n_active -= 1
    return clones[:done], left_at


class MLROS(BaseResampler):
    """Multilabel random oversampling (ML-ROS, Charte et al. 2015).

    The minority labels are those whose IRLbl (max label count / label count) exceeds the
    dataset's MeanIR. Each minority label's *bag* holds the rows that have it. The algorithm
    clones a random row of each bag in turn; a bag leaves once its label's IRLbl falls to
    MeanIR or below (IRLbl is updated after every clone, since a clone adds one row to every
    label of the cloned row); it stops after ``percentage`` % of the dataset's rows have been
    cloned or when no bag is left.

    Parameters
    ----------
    percentage : float, default 25
        Rows to add, as a percentage of the input rows (``floor(n * P / 100)``), in (0, 100].
    random_state : int, numpy.random.Generator or None
        Seed of the one generator used for the whole call.

    Attributes
    ----------
    sample_indices_ : numpy.ndarray of int64
        Output rows as input row indices: ``0..n-1`` followed by the cloned rows.
    minority_labels_ : numpy.ndarray of int64
        The minority label ids (the bags), in label order.
    bag_left_at_ : numpy.ndarray of int64
        Per bag, the number of clones made when it left (-1 if it never left).
    clones_asked_ : int
        ``floor(n * percentage / 100)``; fewer are made when every bag leaves first, and the
        result's ``notes`` say so with both figures.
    report_ : dict
        Rows kept, dropped, added, and the notes (see :meth:`Resampled.report`).

    Notes
    -----
    Follows the paper's pseudo-code (MeanIR computed once on the input; IRLbl recomputed as
    clones are added) with three stated deviations:

    * The stop is exact: the paper decrements the budget inside the loop over bags and tests
      it only at the outer ``while``, so it may overshoot by up to one clone per bag; here it
      stops at exactly ``floor(n * P / 100)`` clones (or earlier when every bag has left).
    * When a bag's turn comes and its IRLbl has already fallen to MeanIR through clones made
      for other bags (co-occurring labels), it leaves without one more clone.
    * Rows are drawn from the input rows of the bag (a clone is never cloned again, so every
      output row is a copy of an input row with uniform probability within its bag).

    The loop (one clone per bag in turn, each updating several label counts) runs in numba; the
    random draws come from the call's generator, one uniform number per clone. Unlike
    mldr.resampling's ``MLROS`` (whose bag-exit update is unreachable code after ``return``),
    bags do leave.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "percentage": Interval(float, 0, 100, closed="right"),
        "random_state": None,
    }

    def __init__(self, *, percentage: float = 25.0, random_state: Any = None) -> None:
        self.percentage = percentage
        self.random_state = random_state

    def _resample(self, X: Any, labels: LabelMatrix, rng: np.random.Generator) -> Resampled:
        n = labels.n_rows
        counts = labels.counts()
        ir, target = irlbl_and_mean_ir(counts)
        minority = np.flatnonzero(np.isfinite(ir) & (ir > target)).astype(np.int64)
        n_clone = int(np.floor(n * float(self.percentage) / 100.0 + 1e-9))
        self.minority_labels_ = minority
        self.mean_ir_ = target
        self.clones_asked_ = n_clone
        if len(minority) == 0 or n_clone == 0:
            self.bag_left_at_ = np.zeros(0, dtype=np.int64)
            idx = np.arange(n, dtype=np.int64)
            return Resampled(idx, labels, n)
        bag_ptr, bag_rows = label_bags(labels, minority)
        indptr, indices = csr_arrays(labels)
        u = rng.random(n_clone)
        clones, left_at = _mlros_kernel(
            indptr,
            indices,
            counts.astype(np.int64).copy(),
            minority,
            bag_ptr,
            bag_rows,
            float(target),
            n_clone,
            u,
        )
        self.bag_left_at_ = left_at
        idx = np.concatenate([np.arange(n, dtype=np.int64), clones])
        return Resampled(idx, labels.take(idx), n)

    def _notes(self, labels: LabelMatrix, result: Resampled) -> Iterator[str]:
        made, asked = result.n_output - result.n_input, self.clones_asked_
        wanted = (
            f"asked for {float(self.percentage):g}% of {labels.n_rows:,} rows = {asked:,} clones"
        )
        if asked == 0:
            yield f"ML-ROS added nothing: {wanted}"
        elif not len(self.minority_labels_):
            yield f"ML-ROS added nothing: no label has IRLbl > MeanIR ({self.mean_ir_:.4g}); {wanted}"
        elif made < asked:
            yield (
                f"ML-ROS stopped after {made:,} clone(s): every minority bag "
                f"({len(self.minority_labels_):,}) reached MeanIR ({self.mean_ir_:.4g}); {wanted}"
            )
