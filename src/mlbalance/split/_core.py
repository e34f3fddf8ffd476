"""The sequential heart of iterative stratification, compiled with numba.

Everything here works on plain integer arrays (CSR / CSC of an "instance x unit" count
matrix) so that one kernel serves first order (units = labels), second order (units =
label pairs) and grouped splitting (instances = groups, counts = rows of the group that
carry the unit). :mod:`mlbalance.split._iterative` builds those arrays and documents the
algorithm.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["iterative_assign", "label_pair_codes"]

_RANK_BITS = 32
_RANK_MASK = (1 << _RANK_BITS) - 1


@njit(cache=True, nogil=True)
def _heap_push(heap: np.ndarray, size: int, key: np.int64) -> int:
    """Push *key* onto the binary min-heap ``heap[:size]``; return the new size."""
    i = size
    heap[i] = key
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= heap[i]:
            break
        tmp = heap[parent]
        heap[parent] = heap[i]
        heap[i] = tmp
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(heap: np.ndarray, size: int) -> np.int64:
    """Remove and return the smallest key of ``heap[:size]`` (the caller decrements size)."""
    top = heap[0]
    last = size - 1
    heap[0] = heap[last]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= last:
            break
        small = left
        right = left + 1
        if right < last and heap[right] < heap[left]:
            small = right
        if heap[i] <= heap[small]:
            break
        tmp = heap[small]
        heap[small] = heap[i]
        heap[i] = tmp
        i = small
    return top


@njit(cache=True, nogil=True)
def _pick_split(
    desired_unit: np.ndarray, desired_size: np.ndarray, key: np.int64, cand: np.ndarray
) -> int:
    """The split that most lacks the unit; ties by the largest desired size, then by *key*."""
    k = desired_unit.shape[0]
    best = desired_unit[0]
    for j in range(1, k):
        if desired_unit[j] > best:
            best = desired_unit[j]
    n = 0
    for j in range(k):
        if desired_unit[j] == best:
            cand[n] = j
            n += 1
    if n == 1:
        return int(cand[0])
    best_size = desired_size[cand[0]]
    for t in range(1, n):
        if desired_size[cand[t]] > best_size:
            best_size = desired_size[cand[t]]
    m = 0
    for t in range(n):
        if desired_size[cand[t]] == best_size:
            cand[m] = cand[t]
            m += 1
    if m == 1:
        return int(cand[0])
    return int(cand[key % m])


@njit(cache=True, nogil=True)
def _pick_by_size(desired_size: np.ndarray, key: np.int64, cand: np.ndarray) -> int:
    """The split with the largest remaining desired size; ties by *key*."""
    k = desired_size.shape[0]
    best = desired_size[0]
    for j in range(1, k):
        if desired_size[j] > best:
            best = desired_size[j]
    n = 0
    for j in range(k):
        if desired_size[j] == best:
            cand[n] = j
            n += 1
    if n == 1:
        return int(cand[0])
    return int(cand[key % n])


@njit(cache=True, nogil=True)
def iterative_assign(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_units: int,
    weights: np.ndarray,
    order: np.ndarray,
    ratios: np.ndarray,
    unit_rank: np.ndarray,
    rank_unit: np.ndarray,
    inst_keys: np.ndarray,
    empty_order: np.ndarray,
) -> np.ndarray:
    """Assign every instance to a split (Sechidis et al. 2011, Algorithm 1).

    Parameters
    ----------
    indptr, indices, data : ndarray
        CSR of the instance x unit count matrix (data > 0).
    n_units : int
        Number of units (columns).
    weights : ndarray of int64
        Rows per instance (1 without groups).
    order : ndarray of int64
        The processing order of the instances (a permutation); each unit visits its
        instances in this order.
    ratios : ndarray of float64
        Desired proportion of each split (sums to 1).
    unit_rank, rank_unit : ndarray of int64
        A random permutation of the units and its inverse: ties between units with the
        same remaining count go to the lowest rank.
    inst_keys : ndarray of int64
        One non-negative random key per processing position (for rows with units) or per
        instance (for ``empty_order``); breaks ties between splits.
    empty_order : ndarray of int64
        Instances without any unit, in the order they fill the splits.

    Returns
    -------
    ndarray of int64
        The split of each instance.
    """
    n_inst = indptr.shape[0] - 1
    k = ratios.shape[0]

    # Lay the instances out in processing order (position t holds instance order[t]) so
    # that each unit's scan below walks memory forwards even when the order is shuffled.
    pos_indptr = np.zeros(n_inst + 1, dtype=np.int64)
    for t in range(n_inst):
        i = order[t]
        pos_indptr[t + 1] = pos_indptr[t] + indptr[i + 1] - indptr[i]
    nnz = pos_indptr[n_inst]
    pos_indices = np.empty(nnz, dtype=np.int32)
    pos_data = np.empty(nnz, dtype=np.int32)
    pos_weight = np.empty(n_inst, dtype=np.int64)
    for t in range(n_inst):
        i = order[t]
        out = pos_indptr[t]
        for q in range(indptr[i], indptr[i + 1]):
            pos_indices[out] = indices[q]
            pos_data[out] = data[q]
            out += 1
        pos_weight[t] = weights[i]

    # The positions holding each unit (CSC), ascending: a counting sort.
    col_indptr = np.zeros(n_units + 1, dtype=np.int64)
    for p in range(nnz):
        col_indptr[pos_indices[p] + 1] += 1
    for u in range(n_units):
        col_indptr[u + 1] += col_indptr[u]
    fill = col_indptr[:-1].copy()
    col_pos = np.empty(nnz, dtype=np.int32)
    for t in range(n_inst):
        for q in range(pos_indptr[t], pos_indptr[t + 1]):
            u = pos_indices[q]
            col_pos[fill[u]] = t
            fill[u] += 1

    # Desired counts: c_j = |D| r_j and c_ij = |D_i| r_j (weighted by rows).
    total_weight = 0.0
    for t in range(n_inst):
        total_weight += pos_weight[t]
    desired_size = np.empty(k, dtype=np.float64)
    for j in range(k):
        desired_size[j] = total_weight * ratios[j]
    remaining = np.zeros(n_units, dtype=np.int64)
    for p in range(nnz):
        remaining[pos_indices[p]] += pos_data[p]
    desired = np.empty((n_units, k), dtype=np.float64)
    for u in range(n_units):
        for j in range(k):
            desired[u, j] = remaining[u] * ratios[j]

    # Min-heap of (remaining count, random rank) packed in one int64. Counts only fall;
    # each fall pushes a fresh entry and stale entries are skipped when popped.
    heap = np.empty(n_units + nnz + 1, dtype=np.int64)
    size = 0
    for u in range(n_units):
        if remaining[u] > 0:
            size = _heap_push(heap, size, (remaining[u] << _RANK_BITS) | unit_rank[u])
    stamp = np.full(n_units, -1, dtype=np.int64)
    touched = np.empty(n_units, dtype=np.int64)
    cand = np.empty(k, dtype=np.int64)
    placed = np.full(n_inst, -1, dtype=np.int16)  # split of each position; small = cached
    step = 0
    while size > 0:
        key = _heap_pop(heap, size)
        size -= 1
        u = rank_unit[key & _RANK_MASK]
        count = key >> _RANK_BITS
        if remaining[u] == 0 or remaining[u] != count:
            continue  # stale entry
        n_touched = 0
        for p in range(col_indptr[u], col_indptr[u + 1]):
            t = col_pos[p]
            if placed[t] >= 0:
                continue
            m = _pick_split(desired[u], desired_size, inst_keys[t], cand)
            placed[t] = m
            for q in range(pos_indptr[t], pos_indptr[t + 1]):
                v = pos_indices[q]
                desired[v, m] -= pos_data[q]
                remaining[v] -= pos_data[q]
                if stamp[v] != step:
                    stamp[v] = step
                    touched[n_touched] = v
                    n_touched += 1
            desired_size[m] -= pos_weight[t]
        for j in range(n_touched):
            v = touched[j]
            if remaining[v] > 0:
                size = _heap_push(heap, size, (remaining[v] << _RANK_BITS) | unit_rank[v])
        step += 1

    assign = np.empty(n_inst, dtype=np.int64)
    for t in range(n_inst):
        assign[order[t]] = placed[t]
    # Instances without a unit fill the splits that lack rows.
    for e in range(empty_order.shape[0]):
        i = empty_order[e]
        m = _pick_by_size(desired_size, inst_keys[i], cand)
        assign[i] = m
        desired_size[m] -= weights[i]
    return assign


@njit(cache=True, nogil=True)
def label_pair_codes(
    indptr: np.ndarray, indices: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every label pair of every row, with replacement: ``(a, b)`` with ``a <= b``.

    Returns ``(pair_indptr, codes)`` where ``codes = a * n_labels + b`` and the pairs of
    row ``i`` are ``codes[pair_indptr[i]:pair_indptr[i + 1]]``. The pair ``(a, a)`` stands
    for label ``a`` alone, as in Szymański and Kajdanowicz (2017).
    """
    n = indptr.shape[0] - 1
    pair_indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        s = indptr[i + 1] - indptr[i]
        pair_indptr[i + 1] = pair_indptr[i] + s * (s + 1) // 2
    codes = np.empty(pair_indptr[n], dtype=np.int64)
    for i in range(n):
        out = pair_indptr[i]
        lo = indptr[i]
        hi = indptr[i + 1]
        for p in range(lo, hi):
            a = np.int64(indices[p])
            for q in range(p, hi):
                codes[out] = a * n_labels + indices[q]
                out += 1
    return pair_indptr, codes
