"""Label co-occurrence: pair counts ``Y^T Y`` and the most frequent label pairs.

Memory is bounded by the data, never by ``labels ** 2`` (issue: one row with 20,000 labels made
``analyse`` build 2e8 pair counts, 12 GB). Up to :data:`DENSE_MAX_LABELS` labels the counts go
into a dense upper triangle (at most 2048 x 2048 int64 = 32 MiB) filled by one compiled pass
over the rows. Beyond, nothing of size ``labels ** 2`` is ever made: the counts are computed one
label ``a`` at a time (Gustavson's row-by-row sparse product, SIAM J. Sci. Comput. 1978, as
``(Y^T Y)[a, :] = sum over the rows r holding a of Y[r, :]``) into one dense accumulator of
``labels`` integers, and

* :func:`top_pairs` keeps only the ``k`` best pairs in a bounded heap: ``O(nnz + labels + k)``
  memory whatever a row holds;
* :func:`cooccurrence` first counts the distinct pairs of each label (a symbolic pass), then
  allocates exactly that and fills it: the memory is the size of its output, and ``max_pairs``
  refuses an output larger than asked for before it is built. ``labels=`` restricts it to a few
  labels (the heatmap of ``analyse --plot``).

The time of every path is the number of label pairs over all rows, ``sum_r k_r (k_r - 1) / 2``,
as for any exact count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit

from mlbalance.errors import ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = ["DENSE_MAX_LABELS", "cooccurrence", "top_pairs"]

#: Up to this many labels, pair counts use a dense upper triangle (32 MiB at most).
DENSE_MAX_LABELS = 2048


# --------------------------------------------------------------------------------------------
# compiled passes
# --------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _dense_upper(indptr, indices, n_labels):  # pragma: no cover - compiled
    """Dense ``(labels, labels)`` int64 counts of label pairs ``a < b`` (upper triangle)."""
    out = np.zeros((n_labels, n_labels), dtype=np.int64)
    for i in range(indptr.shape[0] - 1):
        s, e = indptr[i], indptr[i + 1]
        for p in range(s, e - 1):
            a = indices[p]
            for q in range(p + 1, e):
                out[a, indices[q]] += 1
    return out


@njit(cache=True, nogil=True, inline="always")
def _gather(a, indptr, indices, col_ptr, col_rows, col_pos, acc, touched):  # pragma: no cover
    """Add up ``Y[r, b]`` for ``b > a`` over the rows ``r`` holding label *a*.

    Leaves the counts in ``acc[b]`` and the labels touched in ``touched``; returns how many.
    """
    nt = 0
    for p in range(col_ptr[a], col_ptr[a + 1]):
        r = col_rows[p]
        for q in range(col_pos[p] + 1, indptr[r + 1]):  # indices sorted: these are > a
            b = indices[q]
            if acc[b] == 0:
                touched[nt] = b
                nt += 1
            acc[b] += 1
    return nt


@njit(cache=True, nogil=True, inline="always")
def _worse(c1, a1, b1, c2, a2, b2):  # pragma: no cover - compiled
    """Pair 1 ranks after pair 2: fewer rows, then larger label ids."""
    if c1 != c2:
        return c1 < c2
    if a1 != a2:
        return a1 > a2
    return b1 > b2


@njit(cache=True, nogil=True)
def _sift_down(hc, ha, hb, size, i):  # pragma: no cover - compiled
    """Restore the heap (worst pair on top) below position *i*."""
    while True:
        w = i
        left = 2 * i + 1
        right = left + 1
        if left < size and _worse(hc[left], ha[left], hb[left], hc[w], ha[w], hb[w]):
            w = left
        if right < size and _worse(hc[right], ha[right], hb[right], hc[w], ha[w], hb[w]):
            w = right
        if w == i:
            return
        hc[i], hc[w] = hc[w], hc[i]
        ha[i], ha[w] = ha[w], ha[i]
        hb[i], hb[w] = hb[w], hb[i]
        i = w


@njit(cache=True, nogil=True)
def _sparse_top(indptr, indices, col_ptr, col_rows, col_pos, n_labels, k):  # pragma: no cover
    """The *k* best pairs ``(rows, a, b)``, label by label, in a heap of *k* (unordered)."""
    acc = np.zeros(n_labels, dtype=np.int64)
    touched = np.empty(n_labels, dtype=np.int64)
    hc = np.empty(k, dtype=np.int64)
    ha = np.empty(k, dtype=np.int64)
    hb = np.empty(k, dtype=np.int64)
    size = 0
    for a in range(n_labels):
        nt = _gather(a, indptr, indices, col_ptr, col_rows, col_pos, acc, touched)
        for t in range(nt):
            b = touched[t]
            c = acc[b]
            acc[b] = 0
            if size < k:  # sift the new pair up
                i = size
                size += 1
                hc[i], ha[i], hb[i] = c, a, b
                while i > 0:
                    parent = (i - 1) >> 1
                    if not _worse(hc[i], ha[i], hb[i], hc[parent], ha[parent], hb[parent]):
                        break
                    hc[i], hc[parent] = hc[parent], hc[i]
                    ha[i], ha[parent] = ha[parent], ha[i]
                    hb[i], hb[parent] = hb[parent], hb[i]
                    i = parent
            elif _worse(hc[0], ha[0], hb[0], c, a, b):
                hc[0], ha[0], hb[0] = c, a, b
                _sift_down(hc, ha, hb, size, 0)
    return hc[:size], ha[:size], hb[:size]


@njit(cache=True, nogil=True)
def _sparse_row_sizes(indptr, indices, col_ptr, col_rows, col_pos, n_labels):  # pragma: no cover
    """Distinct partners ``b > a`` of every label *a* (the symbolic pass)."""
    acc = np.zeros(n_labels, dtype=np.int64)
    touched = np.empty(n_labels, dtype=np.int64)
    sizes = np.zeros(n_labels, dtype=np.int64)
    for a in range(n_labels):
        nt = _gather(a, indptr, indices, col_ptr, col_rows, col_pos, acc, touched)
        for t in range(nt):
            acc[touched[t]] = 0
        sizes[a] = nt
    return sizes


@njit(cache=True, nogil=True)
def _sparse_fill(
    indptr, indices, col_ptr, col_rows, col_pos, n_labels, out_ptr
):  # pragma: no cover
    """The upper triangle as CSR (``out_ptr`` from the symbolic pass; columns unsorted)."""
    acc = np.zeros(n_labels, dtype=np.int64)
    touched = np.empty(n_labels, dtype=np.int64)
    out_idx = np.empty(out_ptr[n_labels], dtype=np.int64)
    out_val = np.empty(out_ptr[n_labels], dtype=np.int64)
    for a in range(n_labels):
        nt = _gather(a, indptr, indices, col_ptr, col_rows, col_pos, acc, touched)
        o = out_ptr[a]
        for t in range(nt):
            b = touched[t]
            out_idx[o + t] = b
            out_val[o + t] = acc[b]
            acc[b] = 0
    return out_idx, out_val


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _columns(m: sp.csr_matrix) -> _Columns:
    """CSR arrays plus, per label, its rows and each one's position in the CSR arrays."""
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    indptr = m.indptr.astype(np.int64, copy=False)
    indices = m.indices.astype(np.int64, copy=False)
    where = sp.csr_matrix((np.arange(m.nnz, dtype=np.int64), m.indices, m.indptr), shape=m.shape)
    csc = where.tocsc()  # rows ascending within each column
    return (
        indptr,
        indices,
        csc.indptr.astype(np.int64, copy=False),
        csc.indices.astype(np.int64, copy=False),
        csc.data.astype(np.int64, copy=False),
    )


def _restrict(lm: LabelMatrix, labels: Any) -> sp.csr_matrix:
    idx = np.asarray(labels, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= lm.n_labels):
        raise ParameterError(
            f"labels must be label ids in 0..{lm.n_labels - 1}, got {idx.min()}..{idx.max()}",
            param="labels",
        )
    sub = lm.matrix[:, idx].tocsr()
    sub.sort_indices()
    return sub


def cooccurrence(y: Any, labels: Any = None, *, max_pairs: int | None = None) -> sp.csr_matrix:
    """Label co-occurrence counts ``Y^T Y`` as a sparse int64 matrix (diagonal: label counts).

    Parameters
    ----------
    y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
    labels : array-like of int, optional
        Only these labels (in this order): the result is ``len(labels)`` square.
    max_pairs : int, optional
        Refuse (:class:`~mlbalance.errors.ParameterError`) a result with more than this many
        distinct label pairs, counted before anything of that size is allocated.

    Returns
    -------
    scipy.sparse.csr_matrix
        Symmetric, ``(n, n)`` int64 for the ``n`` labels asked for.

    Notes
    -----
    Memory is the size of the result plus ``O(nnz + labels)``; to rank pairs without the
    whole matrix use :func:`top_pairs` (see the module docstring).
    """
    lm = as_label_matrix(y)
    m = lm.matrix if labels is None else _restrict(lm, labels)
    n = m.shape[1]
    counts = np.bincount(m.indices, minlength=n).astype(np.int64)
    if n <= DENSE_MAX_LABELS:
        m = m if m.has_sorted_indices else m.sorted_indices()
        upper = _dense_upper(m.indptr, m.indices, n)
        pairs = int(np.count_nonzero(upper))
        _check_size(pairs, max_pairs)
        full = upper + upper.T
        full[np.diag_indices(n)] = counts
        return sp.csr_matrix(full)
    cols = _columns(m)
    sizes = _sparse_row_sizes(*cols, n)
    _check_size(int(sizes.sum()), max_pairs)
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=out_ptr[1:])
    out_idx, out_val = _sparse_fill(*cols, n, out_ptr)
    upper = sp.csr_matrix((out_val, out_idx, out_ptr), shape=(n, n))
    upper.sort_indices()
    diag = sp.diags(counts, format="csr", dtype=np.int64)
    return sp.csr_matrix(upper + upper.T + diag, dtype=np.int64)


def _check_size(pairs: int, max_pairs: int | None) -> None:
    if max_pairs is not None and pairs > max_pairs:
        raise ParameterError(
            f"the co-occurrence matrix has {pairs:,} distinct label pairs, more than "
            f"max_pairs={max_pairs:,}; rank pairs with top_pairs() or pass labels=",
            param="max_pairs",
        )


def top_pairs(
    y: Any, k: int = 20, *, cooc: sp.spmatrix | None = None
) -> list[tuple[int, int, int]]:
    """The *k* label pairs ``(i, j, rows)`` with ``i < j`` that co-occur on the most rows.

    Ties go to the smaller label ids, so the order is deterministic. Memory is
    ``O(nnz + labels + k)`` beyond 2048 labels (a bounded heap over label-by-label counts;
    see the module docstring), a 32 MiB dense triangle at most below.

    Parameters
    ----------
    y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
    k : int, default 20
    cooc : sparse matrix, optional
        A co-occurrence matrix already computed (:func:`cooccurrence`): rank its pairs.
    """
    if k <= 0:
        return []
    if cooc is not None:
        upper = sp.triu(cooc, k=1).tocoo()
        rows, cols, vals = upper.row, upper.col, upper.data
    else:
        lm = as_label_matrix(y)
        m = lm.matrix if lm.matrix.has_sorted_indices else lm.matrix.sorted_indices()
        if lm.n_labels <= DENSE_MAX_LABELS:
            dense = _dense_upper(m.indptr, m.indices, lm.n_labels)
            rows, cols = np.nonzero(dense)
            vals = dense[rows, cols]
        else:
            vals, rows, cols = _sparse_top(*_columns(m), lm.n_labels, int(k))
    keep = vals > 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, rows, -vals))[:k]
    return [(int(rows[i]), int(cols[i]), int(vals[i])) for i in order]
