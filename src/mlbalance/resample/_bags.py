"""Label bags (the rows of each label) as flat arrays, for the numba kernels."""

from __future__ import annotations

import numpy as np

from mlbalance.labels import LabelMatrix


def label_bags(labels: LabelMatrix, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each label in *which*, concatenated: ``(bag_ptr, bag_rows)``.

    Bag ``b`` (label ``which[b]``) is ``bag_rows[bag_ptr[b]:bag_ptr[b + 1]]``, rows ascending.
    """
    csc = labels.matrix.tocsc()
    csc.sort_indices()
    starts = csc.indptr[which]
    ends = csc.indptr[which + 1]
    sizes = (ends - starts).astype(np.int64)
    bag_ptr = np.zeros(len(which) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bag_ptr[1:])
    if len(which):
        pieces = [csc.indices[s:e] for s, e in zip(starts, ends)]
        bag_rows = np.concatenate(pieces).astype(np.int64)
    else:
        bag_rows = np.zeros(0, dtype=np.int64)
    return bag_ptr, bag_rows


def csr_arrays(labels: LabelMatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of the label matrix as int64 (sorted indices per row)."""
    m = labels.matrix
    return m.indptr.astype(np.int64, copy=False), m.indices.astype(np.int64, copy=False)
