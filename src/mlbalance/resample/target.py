"""Target counts: raise every label to at least N rows and/or cap head labels at M rows."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from numba import njit

from mlbalance.errors import ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.resample._bags import csr_arrays
from mlbalance.resample.base import BaseResampler, Interval, Resampled

__all__ = ["TargetCounts"]


@njit(cache=True)
def _cap_kernel(indptr, indices, counts, order, cap, floor):  # pragma: no cover - compiled
    """Drop rows (visited in *order*) until no label has more than *cap* rows, if possible.

    Pass 1 drops a row only when every one of its labels is above the cap. Pass 2 drops a row
    with at least one label above the cap when none of its labels would fall below *floor*.
    """
    n = indptr.shape[0] - 1
    dropped = np.zeros(n, dtype=np.bool_)
    for strict in (True, False):
        for r in order:
            if dropped[r] or indptr[r] == indptr[r + 1]:
                continue
            over = False
            ok = True
            for p in range(indptr[r], indptr[r + 1]):
                c = counts[indices[p]]
                if c > cap:
                    over = True
                elif strict or c - 1 < floor:
                    ok = False
                    break
            if over and ok:
                dropped[r] = True
                for p in range(indptr[r], indptr[r + 1]):
                    counts[indices[p]] -= 1
    return dropped


class TargetCounts(BaseResampler):
    """Raise every label to at least ``min_rows`` rows and/or cap labels at ``max_rows`` rows.

    Not from a paper: the direct form of what users ask for ("every label at least 50 rows,
    no label more than 20,000"), with a cap on how often one row may be copied.

    1. Cap (``max_rows``): rows are visited in a random order. A row is dropped when all its
       labels are above the cap; a second pass then drops rows having a label above the cap
       as long as none of their labels falls below ``min_rows`` (or 1). Labels that only occur
       together with protected labels may stay above the cap.
    2. Raise (``min_rows``): labels are visited from the rarest. A label short of ``min_rows``
       gets copies of its rows, spread evenly (each of its rows once, in a random order, then
       again) with at most ``max_copies`` extra copies per input row. Copies count for every
       label of the copied row, so later labels may already be satisfied. Copies can push a
       co-occurring label back above ``max_rows``.

    Parameters
    ----------
    min_rows : int or None
        Target minimum rows per label (labels with no row at all stay at 0).
    max_rows : int or None
        Cap on rows per label.
    max_copies : int or None, default 10
        Most extra copies of one input row (None = unlimited).
    random_state : int, numpy.random.Generator or None

    Attributes
    ----------
    sample_indices_ : numpy.ndarray of int64
        Kept input rows ascending, followed by the copies.
    shortfall_ : dict[str, int]
        Labels that could not reach ``min_rows`` (because of ``max_copies``), rows missing.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "min_rows": Interval(int, 1, None, allow_none=True),
        "max_rows": Interval(int, 1, None, allow_none=True),
        "max_copies": Interval(int, 1, None, allow_none=True),
        "random_state": None,
    }

    def __init__(
        self,
        *,
        min_rows: int | None = None,
        max_rows: int | None = None,
        max_copies: int | None = 10,
        random_state: Any = None,
    ) -> None:
        self.min_rows = min_rows
        self.max_rows = max_rows
        self.max_copies = max_copies
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.min_rows is None and self.max_rows is None:
            raise ParameterError(
                "target counts need min_rows and/or max_rows", param=("min_rows", "max_rows")
            )
        if (
            self.min_rows is not None
            and self.max_rows is not None
            and self.min_rows > self.max_rows
        ):
            raise ParameterError(
                f"min_rows ({self.min_rows}) must not exceed max_rows ({self.max_rows})",
                param=("min_rows", "max_rows"),
            )

    def _resample(self, X: Any, labels: LabelMatrix, rng: np.random.Generator) -> Resampled:
        n = labels.n_rows
        counts = labels.counts().astype(np.int64)
        indptr, indices = csr_arrays(labels)
        keep = np.ones(n, dtype=bool)
        if self.max_rows is not None and (counts > self.max_rows).any():
            floor = max(self.min_rows or 1, 1)
            order = rng.permutation(n).astype(np.int64)
            dropped = _cap_kernel(indptr, indices, counts, order, int(self.max_rows), floor)
            keep = ~dropped
        copies = np.zeros(n, dtype=np.int64)
        self.shortfall_: dict[str, int] = {}
        if self.min_rows is not None:
            copies = self._raise(labels, counts, keep, rng)
        kept = np.flatnonzero(keep).astype(np.int64)
        extra = np.repeat(np.arange(n, dtype=np.int64), copies)
        idx = np.concatenate([kept, extra])
        if self.shortfall_:
            worst = sorted(self.shortfall_.items(), key=lambda kv: -kv[1])[:5]
            warnings.warn(
                f"{len(self.shortfall_)} label(s) cannot reach {self.min_rows} rows with at most "
                f"{self.max_copies} copies per row, e.g. {dict(worst)} rows short",
                stacklevel=3,
            )
        return Resampled(idx, labels.take(idx), n)

    def _raise(
        self,
        labels: LabelMatrix,
        counts: np.ndarray,
        keep: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        n = labels.n_rows
        assert self.min_rows is not None
        csc = labels.matrix.tocsc()
        csr = labels.matrix
        copies = np.zeros(n, dtype=np.int64)
        room_cap = np.iinfo(np.int64).max if self.max_copies is None else int(self.max_copies)
        for lab in np.argsort(counts, kind="stable"):
            need = int(self.min_rows - counts[lab])
            if need <= 0 or counts[lab] == 0:
                continue
            cand = csc.indices[csc.indptr[lab] : csc.indptr[lab + 1]].astype(np.int64)
            cand = cand[keep[cand]]
            cand = cand[rng.permutation(len(cand))]
            # prefer rows whose other labels need no more rows (fewest such co-labels first)
            penalty = self._penalty(csr, cand, counts, lab)
            order = np.argsort(penalty, kind="stable")
            cand, penalty = cand[order], penalty[order]
            room = room_cap - copies[cand]
            add = np.zeros(len(cand), dtype=np.int64)
            left = need
            for level in np.unique(penalty):
                group = np.flatnonzero(penalty == level)
                left = _spread(add, room, group, left)
                if left == 0:
                    break
            if left > 0:
                self.shortfall_[labels.names[lab]] = left
            nz = add > 0
            if nz.any():
                copies[cand[nz]] += add[nz]
                counts += np.asarray(csr[cand[nz]].T @ add[nz]).ravel().astype(np.int64)
        return copies

    def _penalty(self, csr: Any, cand: np.ndarray, counts: np.ndarray, lab: int) -> np.ndarray:
        """Per candidate row: co-labels already at ``min_rows`` (twice if at ``max_rows``)."""
        sub = csr[cand]
        full = (counts >= self.min_rows).astype(np.int64)
        if self.max_rows is not None:
            full += counts >= self.max_rows
        full[lab] = 0
        return np.asarray(sub @ full).ravel().astype(np.int64)


def _spread(add: np.ndarray, room: np.ndarray, group: np.ndarray, left: int) -> int:
    """Give up to *left* copies to the rows *group*, evenly, within ``room``; return what is left."""
    while left > 0:
        open_ = group[room[group] - add[group] > 0]
        if len(open_) == 0:
            break
        per, rem = divmod(left, len(open_))
        give = np.minimum(room[open_] - add[open_], per)
        extra = (room[open_[:rem]] - add[open_[:rem]] - give[:rem]) > 0
        give[:rem] += extra
        if give.sum() == 0:
            break
        add[open_] += give
        left -= int(give.sum())
    return left
