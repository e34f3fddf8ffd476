"""The compiled loops of the rare-label repair pass (numba); :mod:`._repair` drives them.

All state lives in plain arrays grouped in tuples: ``csr``/``csc`` (instance x label counts),
``state`` = ``(cnt, n_here, n_here_eval)`` (rows of each label per split, splits and evaluation
splits holding it), ``targets`` = ``(need_total, need_eval)``, ``back`` (the swap-back search,
described above :func:`_touch`) and ``logs`` (the moves made).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["BACK", "EVAL", "KIND_NAMES", "SPREAD", "spread_kernel"]

#: Why an instance moved: to spread a label over more splits, to give a label a row in the
#: evaluation splits (``ensure_eval``), or back the other way to keep split sizes.
KIND_NAMES = ("spread", "eval", "swap_back")
SPREAD, EVAL, BACK = 0, 1, 2
_BACK_WINDOW = 2000  # candidates a swap-back looks at, as the Python pass did


@njit(cache=True, nogil=True)
def _blocks(lab, v, src, dst, state, targets, eval_mask, ensure_eval):  # pragma: no cover
    """True when moving *v* rows of label *lab* from *src* to *dst* takes it below a target."""
    cnt, n_here, n_here_eval = state
    need_total, need_eval = targets
    if cnt[lab, src] - v > 0:
        return False  # the label stays in src
    if cnt[lab, dst] != 0 and n_here[lab] - 1 < need_total[lab]:
        return True  # it would be in one split fewer
    check_eval = ensure_eval and eval_mask[src] and not eval_mask[dst]
    return check_eval and n_here_eval[lab] - 1 < need_eval[lab]  # one evaluation split fewer


@njit(cache=True, nogil=True)
def _blocker(i, src, dst, csr, state, targets, eval_mask, ensure_eval):  # pragma: no cover
    """A label that moving instance *i* from *src* to *dst* would take below its targets.

    -1 when the move is allowed: no label of *i* would be in fewer splits than
    ``min(rows, splits)`` (or, with ``ensure_eval``, in fewer evaluation splits than its
    target) because of it.
    """
    indptr, indices, data = csr
    for p in range(indptr[i], indptr[i + 1]):
        if _blocks(indices[p], data[p], src, dst, state, targets, eval_mask, ensure_eval):
            return indices[p]
    return -1


@njit(cache=True, nogil=True)
def _move(i, dst, assign, csr, state, eval_mask, moved):  # pragma: no cover - compiled
    """Move instance *i* to split *dst*, keeping the counts up to date."""
    indptr, indices, data = csr
    cnt, n_here, n_here_eval = state
    src = assign[i]
    for p in range(indptr[i], indptr[i + 1]):
        lab = indices[p]
        cnt[lab, src] -= data[p]
        if cnt[lab, src] == 0:
            n_here[lab] -= 1
            if eval_mask[src]:
                n_here_eval[lab] -= 1
        if cnt[lab, dst] == 0:
            n_here[lab] += 1
            if eval_mask[dst]:
                n_here_eval[lab] += 1
        cnt[lab, dst] += data[p]
    assign[i] = dst
    moved[i] = True


# The swap-back search state, one tuple ``back``:
#   items, start, length, cursor, fill -- each split's list of rows (by size), made on first use
#   pos                                -- each row's position in its split's list (-1: none)
#   seen_label, seen_mask, seen_version -- per list position: the label that blocked the row,
#                                         the donors it blocks it for, its version then
#   blocks, version                    -- per label: positions it is recorded as blocking, and
#                                         how many times its counts changed
#   end, dirty, known                  -- per (destination, donor): the search's known-blocked
#                                         prefix [cursor, min(end, dirty)) and whether it holds
@njit(cache=True, nogil=True)
def _bit(donor):  # pragma: no cover - compiled
    """The donor's bit in a position's mask (none beyond 62 splits: never remembered)."""
    return np.int64(1) << donor if donor < 62 else np.int64(0)


@njit(cache=True, nogil=True)
def _mark_dirty(dirty, dest, mask, q):  # pragma: no cover - compiled
    """Position *q* of *dest*'s list must be looked at again by the donors in *mask*."""
    d = 0
    while mask != 0:
        if mask & 1:
            dirty[dest, d] = min(dirty[dest, d], q)
        mask >>= 1
        d += 1


@njit(cache=True, nogil=True)
def _touch(i, src, dst, csr, csc, cnt, assign, moved, back):  # pragma: no cover - compiled
    """After instance *i* moved from *src* to *dst*: un-trust the rows its labels blocked.

    Swap-backs move single rows (no groups), so a row is blocked by a label ``l`` only while
    it is the one row of ``l`` in its split (count 1); a count can unblock it only by going
    1 -> 2 there, 0 -> 1 anywhere (``l`` gains a split) or 1 -> 0 in the donor (moving the
    row back then restores ``l`` there). Only such changes bump the label's version and mark
    the positions it blocks dirty; other changes (a frequent label's count going 40 -> 41)
    cannot turn a blocked row into an allowed one.
    """
    indptr, indices, _ = csr
    csc_indptr, csc_indices, _ = csc
    start, pos = back[1], back[5]
    seen_label, seen_mask = back[6], back[7]
    blocks, version, dirty = back[9], back[10], back[12]
    for p in range(indptr[i], indptr[i + 1]):
        lab = indices[p]
        if cnt[lab, src] != 0 and cnt[lab, dst] > 2:
            continue
        version[lab] += 1
        if blocks[lab] == 0:
            continue
        for q in range(csc_indptr[lab], csc_indptr[lab + 1]):
            c = csc_indices[q]
            if moved[c] or pos[c] < 0:
                continue
            a = start[assign[c]] + pos[c]
            if seen_label[a] == lab:
                _mark_dirty(dirty, assign[c], seen_mask[a], pos[c])


@njit(cache=True, nogil=True)
def _find_back(
    dest, donor, assign, csr, state, targets, eval_mask, ensure_eval, moved, order_by_size, back
):  # pragma: no cover - compiled
    """A row of *dest* that can go to *donor* without taking a label out of *dest*, or -1.

    Fewest labels first, among the first ``_BACK_WINDOW`` rows still unmoved in *dest*'s
    list (the rows in *dest* when it first received a row, ordered by size).

    Searches repeat over the same rows, most of them blocked, so the search remembers what
    it saw, without changing its answer: a row stays blocked while the label that blocked it
    keeps its counts. Per list position it keeps that label, its version then and the donors
    it blocks the row for (a bit mask), and per (destination, donor) the prefix of the
    window known to be blocked; :func:`_touch` marks a position dirty when its blocking
    label changes, and the next search starts at the first dirty position (or where the
    last one stopped).
    """
    items, start, length, cursor, fill, pos = back[:6]
    seen_label, seen_mask, seen_version, blocks, version, end, dirty, known = back[6:]
    if length[dest] < 0:
        first = fill[0]
        c = 0
        for q in range(order_by_size.shape[0]):
            r = order_by_size[q]
            if assign[r] == dest:
                items[first + c] = r
                seen_label[first + c] = -1
                pos[r] = c
                c += 1
        start[dest] = first
        length[dest] = c
        fill[0] = first + c
    s0 = start[dest]
    size = length[dest]
    p = cursor[dest]
    while p < size and (moved[items[s0 + p]] or assign[items[s0 + p]] != dest):
        p += 1
    cursor[dest] = p
    stop = min(p + _BACK_WINDOW, size)
    bit = _bit(donor)
    q = max(p, min(end[dest, donor], dirty[dest, donor])) if known[dest, donor] else p
    while q < stop:
        a = s0 + q
        c = items[a]
        if moved[c] or assign[c] != dest:
            q += 1
            continue
        old = seen_label[a]
        if old >= 0 and version[old] == seen_version[a]:
            if seen_mask[a] & bit:
                q += 1
                continue  # still blocked by the same unchanged label
            if _blocks(old, 1, dest, donor, state, targets, eval_mask, ensure_eval):
                seen_mask[a] |= bit  # the same label blocks it for this donor too
                q += 1
                continue
        lab = _blocker(c, dest, donor, csr, state, targets, eval_mask, ensure_eval)
        if lab < 0:
            break
        if old >= 0:
            blocks[old] -= 1
            _mark_dirty(dirty, dest, seen_mask[a] & ~bit, q)  # the other donors' record goes
        seen_label[a] = lab
        seen_mask[a] = bit
        seen_version[a] = version[lab]
        blocks[lab] += 1
        q += 1
    known[dest, donor] = True
    end[dest, donor] = q
    dirty[dest, donor] = size
    return items[s0 + q] if q < stop else -1


@njit(cache=True, nogil=True)
def _pick_donor_row(
    lab,
    dest,
    assign,
    csr,
    csc,
    state,
    targets,
    totals,
    ratios,
    eval_mask,
    ensure_eval,
    row_size,
    moved,
    donors,
    key,
):  # pragma: no cover
    """The instance to move for *lab* into *dest*, or -1 when every candidate is blocked.

    Donors are the splits holding the label, largest surplus over their desired share first
    (stable on ties); in the first donor that has one, the allowed instance with the fewest
    labels (first in instance order on ties) that does not take the label out of the donor.
    """
    csc_indptr, csc_indices, csc_data = csc
    cnt = state[0]
    k = ratios.shape[0]
    nd = 0
    for j in range(k):
        if cnt[lab, j] == 0:
            continue
        s = -(cnt[lab, j] - ratios[j] * totals[lab])
        pos = nd
        while pos > 0 and key[pos - 1] > s:
            donors[pos] = donors[pos - 1]
            key[pos] = key[pos - 1]
            pos -= 1
        donors[pos] = j
        key[pos] = s
        nd += 1
    for q in range(nd):
        d = donors[q]
        chosen = -1
        best = -1
        for p in range(csc_indptr[lab], csc_indptr[lab + 1]):
            i = csc_indices[p]
            if assign[i] != d or moved[i] or cnt[lab, d] - csc_data[p] < 1:
                continue
            if best >= 0 and row_size[i] >= best:
                continue  # cannot beat the current choice
            if _blocker(i, d, dest, csr, state, targets, eval_mask, ensure_eval) < 0:
                chosen = i
                best = row_size[i]
        if chosen >= 0:
            return chosen
    return -1


@njit(cache=True, nogil=True)
def spread_kernel(
    todo,
    assign,
    csr,
    csc,
    state,
    targets,
    totals,
    ratios,
    eval_mask,
    ensure_eval,
    swap_back,
    row_size,
    order_by_size,
    moved,
    back,
    logs,
):  # pragma: no cover - compiled
    """Repair the labels *todo* in order (see ``_repair.spread_labels``); return the moves made.

    Per label, up to ``k`` times: the destination is an evaluation split lacking the label
    while the label is short there, else any split lacking it (the largest ratio first);
    :func:`_pick_donor_row` chooses the instance; without groups, :func:`_find_back` sends a
    row of the destination back to the donor so that sizes do not drift.
    """
    cnt, n_here, n_here_eval = state
    need_total, need_eval = targets
    log_inst, log_src, log_dst, log_lab, log_kind = logs
    k = ratios.shape[0]
    n_eval = 0
    for j in range(k):
        if eval_mask[j]:
            n_eval += 1
    donors = np.empty(k, dtype=np.int64)
    key = np.empty(k, dtype=np.float64)
    n_log = 0
    for t in range(todo.shape[0]):
        lab = todo[t]
        for _ in range(k):
            if n_here_eval[lab] < need_eval[lab] and n_eval - n_here_eval[lab] > 0:
                kind = EVAL
            elif n_here[lab] < need_total[lab]:
                kind = SPREAD
            else:
                break
            dest = -1
            for j in range(k):
                if cnt[lab, j] != 0 or (kind == EVAL and not eval_mask[j]):
                    continue
                if dest < 0 or ratios[j] > ratios[dest]:
                    dest = j
            chosen = _pick_donor_row(
                lab,
                dest,
                assign,
                csr,
                csc,
                state,
                targets,
                totals,
                ratios,
                eval_mask,
                ensure_eval,
                row_size,
                moved,
                donors,
                key,
            )
            if chosen < 0:
                break
            donor = assign[chosen]
            _move(chosen, dest, assign, csr, state, eval_mask, moved)
            log_inst[n_log], log_src[n_log], log_dst[n_log] = chosen, donor, dest
            log_lab[n_log], log_kind[n_log] = lab, kind
            n_log += 1
            if not swap_back:
                continue
            _touch(chosen, donor, dest, csr, csc, cnt, assign, moved, back)
            back_row = _find_back(
                dest,
                donor,
                assign,
                csr,
                state,
                targets,
                eval_mask,
                ensure_eval,
                moved,
                order_by_size,
                back,
            )
            if back_row >= 0:
                _move(back_row, donor, assign, csr, state, eval_mask, moved)
                _touch(back_row, dest, donor, csr, csc, cnt, assign, moved, back)
                log_inst[n_log], log_src[n_log], log_dst[n_log] = back_row, dest, donor
                log_lab[n_log], log_kind[n_log] = lab, BACK
                n_log += 1
    return n_log
