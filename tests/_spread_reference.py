"""The pure-Python rare-label repair pass as it was before it was compiled (commit 488d24a).

Kept only as the reference that ``tests/test_split.py`` checks the compiled pass
(:mod:`mlbalance.split._repair`) against, move for move, on random inputs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def spread_labels_reference(
    assign: np.ndarray,
    inst_labels: sp.csr_matrix,
    weights: np.ndarray,
    ratios: np.ndarray,
    *,
    eval_mask: np.ndarray,
    ensure_eval: bool,
    swap_back: bool,
) -> int:
    """Move instances so that rare labels reach as many splits as they can (in place).

    Targets per label with ``c`` instances: present in ``min(c, k)`` splits; with
    ``ensure_eval`` and ``c >= 2``, present in ``min(c - 1, n_eval)`` evaluation splits
    when a training split exists (``min(c, n_eval)`` otherwise). Returns the number of
    moves made. See :func:`iterative_stratification` for the rules.
    """
    k = ratios.shape[0]
    n_inst, n_labels = inst_labels.shape
    if n_labels == 0:
        return 0
    indptr, indices, data = inst_labels.indptr, inst_labels.indices, inst_labels.data
    split_of_entry = np.repeat(assign, np.diff(indptr))
    cnt = (
        np.bincount(split_of_entry * n_labels + indices, weights=data, minlength=k * n_labels)
        .reshape(k, n_labels)
        .astype(np.int64)
    )
    n_with = np.bincount(indices, minlength=n_labels)
    totals = cnt.sum(axis=0)
    n_eval = int(eval_mask.sum())
    has_train = n_eval < k
    need_total = np.minimum(n_with, k)
    need_eval = np.zeros(n_labels, dtype=np.int64)
    if ensure_eval:
        extra = np.minimum(n_with - (1 if has_train else 0), n_eval)
        need_eval = np.where(n_with >= 2, np.maximum(extra, 0), 0)

    present = cnt > 0
    short = (present.sum(axis=0) < need_total) | (present[eval_mask].sum(axis=0) < need_eval)
    todo = np.flatnonzero(short)
    if todo.size == 0:
        return 0
    todo = todo[np.argsort(totals[todo], kind="stable")]
    csc = inst_labels.tocsc()
    csc.sort_indices()
    row_size = np.diff(indptr)
    moved = np.zeros(n_inst, dtype=bool)
    back_lists: dict[int, np.ndarray] = {}
    back_ptr = np.zeros(k, dtype=np.int64)
    order_by_size = np.argsort(row_size, kind="stable")
    moves = 0

    def labels_of(i: int) -> tuple[np.ndarray, np.ndarray]:
        return indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]]

    def allowed(i: int, src: int, dst: int) -> bool:
        # No label of instance i may fall below its targets by moving i from src to dst.
        labs, vals = labels_of(i)
        leaving = cnt[src, labs] - vals <= 0
        entering = cnt[dst, labs] == 0
        lose = leaving & ~entering
        if lose.any():
            lost = labs[lose]
            if ((cnt[:, lost] > 0).sum(axis=0) - 1 < need_total[lost]).any():
                return False
        if ensure_eval and eval_mask[src] and not eval_mask[dst] and leaving.any():
            lost = labs[leaving]
            if ((cnt[eval_mask][:, lost] > 0).sum(axis=0) - 1 < need_eval[lost]).any():
                return False
        return True

    def move(i: int, dest: int) -> None:
        labs, vals = labels_of(i)
        cnt[assign[i], labs] -= vals
        cnt[dest, labs] += vals
        assign[i] = dest
        moved[i] = True

    def find_back(dest: int, donor: int) -> int:
        if dest not in back_lists:
            back_lists[dest] = order_by_size[assign[order_by_size] == dest]
        cands = back_lists[dest]
        p = int(back_ptr[dest])
        while p < cands.size and (moved[cands[p]] or assign[cands[p]] != dest):
            p += 1
        back_ptr[dest] = p
        for q in range(p, min(p + 2000, cands.size)):
            c = int(cands[q])
            if not moved[c] and assign[c] == dest and allowed(c, dest, donor):
                return c
        return -1

    for lab_id in todo:
        lab = int(lab_id)
        members = csc.indices[csc.indptr[lab] : csc.indptr[lab + 1]]
        member_counts = csc.data[csc.indptr[lab] : csc.indptr[lab + 1]]
        for _ in range(k):
            here = cnt[:, lab] > 0
            missing_eval = np.flatnonzero(eval_mask & ~here)
            if here[eval_mask].sum() < need_eval[lab] and missing_eval.size:
                pool = missing_eval
            elif here.sum() < need_total[lab]:
                pool = np.flatnonzero(~here)
            else:
                break
            dest = int(pool[np.argmax(ratios[pool])])
            surplus = cnt[:, lab] - ratios * totals[lab]
            donors = [d for d in np.argsort(-surplus, kind="stable") if here[d]]
            chosen = -1
            for d in donors:
                d = int(d)
                best_size = None
                for i, v in zip(members, member_counts):
                    i = int(i)
                    if assign[i] != d or moved[i] or cnt[d, lab] - v < 1:
                        continue
                    if not allowed(i, d, dest):
                        continue
                    if best_size is None or row_size[i] < best_size:
                        chosen, best_size = i, row_size[i]
                if chosen >= 0:
                    break
            if chosen < 0:
                break
            donor = int(assign[chosen])
            move(chosen, dest)
            moves += 1
            if swap_back:
                back = find_back(dest, donor)
                if back >= 0:
                    move(back, donor)
    return moves
