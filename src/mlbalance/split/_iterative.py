"""Iterative stratification: one split id per row, for any ratios or k folds.

References
----------
.. [1] K. Sechidis, G. Tsoumakas and I. Vlahavas (2011). "On the stratification of
   multi-label data". ECML PKDD 2011, LNCS 6913, pp. 145-158. Algorithm 1.
.. [2] P. Szymański and T. Kajdanowicz (2017). "A network perspective on stratification
   of multi-label data". Proc. First International Workshop on Learning with Imbalanced
   Domains, PMLR 74, pp. 22-35.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance._params import BOOL, RANDOM_STATE, Options, Predicate, validate_params
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import as_label_matrix
from mlbalance.split._core import iterative_assign, label_pair_codes
from mlbalance.split._repair import Repairs, spread_labels

__all__ = [
    "ORDER",
    "SPLIT_RANDOM_STATE",
    "StratifiedSplit",
    "check_ratios",
    "encode_groups",
    "iterative_stratification",
    "make_rng",
    "stratified_split",
]

RandomState = int | np.integer | np.random.Generator | np.random.RandomState | None

#: ``order``: first (labels) or second (label pairs) order stratification.
ORDER = Options((1, 2))
#: ``random_state`` of a splitter: as :data:`~mlbalance._params.RANDOM_STATE`, or a legacy
#: ``numpy.random.RandomState`` (scikit-learn code passes those).
SPLIT_RANDOM_STATE = (
    RANDOM_STATE,
    Predicate(
        lambda v: isinstance(v, np.random.RandomState),
        "a numpy RandomState",
        good=np.random.RandomState(0),
    ),
)
_EVAL_SPLITS = Predicate(
    lambda v: (
        v is None
        or (
            not isinstance(v, (str, bytes))
            and len(list(v)) > 0
            and all(isinstance(j, (int, np.integer)) and not isinstance(j, bool) for j in v)
        )
    ),
    "None or a non-empty sequence of split ids",
    bad=("1", [], [0.5], 3),
    good=None,
)


def make_rng(random_state: Any) -> np.random.Generator:
    """One :class:`numpy.random.Generator` from an int, a Generator, a RandomState or None.

    A Generator is used as is (it advances); a legacy ``RandomState`` gives a seed.
    ``None`` draws fresh entropy, so pass an int for reproducible splits.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    if random_state is None or isinstance(random_state, (int, np.integer)):
        if random_state is not None and int(random_state) < 0:
            raise ParameterError(
                f"random_state must be >= 0, got {random_state}", param="random_state"
            )
        return np.random.default_rng(None if random_state is None else int(random_state))
    raise ParameterError(
        "random_state must be an int, a numpy Generator or None, got "
        f"{type(random_state).__name__}",
        param="random_state",
    )


def check_ratios(ratios: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """Validate split ratios (or a fold count) and return them as float64 summing to 1.

    Parameters
    ----------
    ratios : int or sequence of float
        ``k`` (an int >= 2) for k equal folds, or the proportion of each split, each > 0,
        summing to 1 (within 1e-6).
    """
    if isinstance(ratios, (int, np.integer)) and not isinstance(ratios, bool):
        k = int(ratios)
        if k < 2:
            raise ParameterError(f"need at least 2 folds, got {k}", param="ratios")
        return np.full(k, 1.0 / k)
    try:
        arr = np.asarray(ratios, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ParameterError(f"ratios must be numbers, got {ratios!r}", param="ratios") from None
    shown = ",".join(f"{r:g}" for r in arr)
    if arr.size < 2:
        raise ParameterError(
            f"ratios need at least 2 splits, got {shown or 'none'}", param="ratios"
        )
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ParameterError(f"ratios must each be > 0, got {shown}", param="ratios")
    if abs(arr.sum() - 1.0) > 1e-6:
        raise ParameterError(
            f"ratios must sum to 1, got {shown} (sum {arr.sum():g})", param="ratios"
        )
    return arr / arr.sum()


def encode_groups(groups: Any, n_rows: int, *, what: str = "groups") -> tuple[np.ndarray, int]:
    """Dense group codes ``0..n_groups-1`` in order of first appearance, and ``n_groups``.

    Raises :class:`ParameterError` on a length mismatch and :class:`InputError` on nulls.
    """
    import pandas as pd

    values = groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups)
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise ParameterError(
            f"{what} must have one value per row: got shape {values.shape}, expected ({n_rows},)"
        )
    nulls = pd.isna(values)
    if nulls.any():
        row = int(np.flatnonzero(nulls)[0])
        raise InputError(f"{what} has a null at row {row} ({int(nulls.sum())} nulls in all)")
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def _int_csr(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(
        (
            matrix.data.astype(np.int32),
            matrix.indices.astype(np.int32),
            matrix.indptr.astype(np.int64),
        ),
        shape=matrix.shape,
    )
    return out


def _pair_matrix(labels: sp.csr_matrix) -> sp.csr_matrix:
    """Rows x (label pairs present), 0/1: the units of second-order stratification."""
    n, n_labels = labels.shape
    pair_indptr, codes = label_pair_codes(
        labels.indptr.astype(np.int64), labels.indices.astype(np.int64), n_labels
    )
    _, inverse = np.unique(codes, return_inverse=True)
    n_pairs = int(inverse.max()) + 1 if inverse.size else 0
    return sp.csr_matrix(
        (np.ones(inverse.size, dtype=np.int64), inverse.astype(np.int64), pair_indptr),
        shape=(n, n_pairs),
    )


def _group_matrix(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    n = codes.shape[0]
    return sp.csr_matrix(
        (np.ones(n, dtype=np.int64), (codes, np.arange(n, dtype=np.int64))), shape=(n_groups, n)
    )


#: Declared constraints of the options of :func:`iterative_stratification` (``ratios`` is
#: checked by :func:`check_ratios`, ``groups`` by :func:`encode_groups`).
STRATIFY_CONSTRAINTS: dict[str, Any] = {
    "order": ORDER,
    "shuffle": BOOL,
    "random_state": SPLIT_RANDOM_STATE,
    "spread_rare": BOOL,
    "ensure_eval_labels": BOOL,
    "eval_splits": _EVAL_SPLITS,
}


@dataclass(frozen=True)
class StratifiedSplit:
    """The split id of every row and what the rare-label repair pass moved to get there.

    Attributes
    ----------
    ids : ndarray of int64, shape (n_rows,)
        The split (``0 .. n_splits - 1``) of every row.
    repairs : Repairs
        Every move of the repair pass (rows; with groups, each moved group by its first
        row and its size), and the labels whose targets stayed unmet. Empty when
        ``spread_rare`` and ``ensure_eval_labels`` are both off or nothing needed a move.
    """

    ids: np.ndarray
    repairs: Repairs


def iterative_stratification(
    y: Any,
    ratios: int | Sequence[float] | np.ndarray,
    *,
    order: int = 1,
    groups: Any = None,
    shuffle: bool = False,
    random_state: RandomState = None,
    spread_rare: bool = True,
    ensure_eval_labels: bool = False,
    eval_splits: Sequence[int] | None = None,
) -> np.ndarray:
    """Split rows into subsets that keep every label's proportion: one split id per row.

    This is Algorithm 1 of Sechidis, Tsoumakas and Vlahavas (2011) [1]_:

    1. Each split ``j`` wants ``c_j = r_j |D|`` rows, and ``c_ij = r_j |D_i|`` rows of
       label ``i``.
    2. Repeatedly take the label with the fewest remaining (unassigned) rows, ties at
       random, and send each of its remaining rows to the split with the largest
       ``c_ij`` (the one that most lacks the label); ties go to the split with the largest
       ``c_j``, then at random. Each placed row decrements ``c_j`` and ``c_ij`` of all its
       labels.
    3. Rows with no label go, one by one, to the split with the largest ``c_j``.

    With ``order=2`` the units are label pairs instead of labels, each row carrying every
    pair of its labels with replacement (``(a, a)`` stands for ``a`` alone), the second-
    order stratification of Szymański and Kajdanowicz (2017) [2]_.

    Implementation: the sequential loop runs in numba over CSR/CSC arrays. Per-label
    remaining counts are updated as rows are placed and the next label comes from a
    min-heap keyed by (remaining count, random rank), so the run is
    ``O(nnz log L + n k)`` rather than the ``O(n L)`` recount per step of the reference
    implementations.

    Parameters
    ----------
    y : LabelMatrix, array-like or sparse matrix
        The label matrix (anything :func:`mlbalance.as_label_matrix` accepts).
    ratios : int or sequence of float
        ``k`` for k equal folds, or the desired proportion of each split (> 0, sum 1).
    order : {1, 2}
        1 stratifies labels [1]_, 2 stratifies label pairs [2]_.
    groups : array-like, optional
        One group id per row. Rows of one group always land in the same split; see Notes.
    shuffle : bool
        Process rows (or groups) in a random order instead of index order. Without it the
        result still depends on ``random_state`` through the random tie-breaks.
    random_state : int, numpy Generator or None
        Seeds the one generator of the call (tie-breaks and shuffling). Same seed, same
        split. ``None`` draws fresh entropy.
    spread_rare : bool
        After the algorithm, move single rows so that every label reaches
        ``min(rows of the label, number of splits)`` splits where a move can do so without
        taking another label out of a split (see Notes). Default True.
    ensure_eval_labels : bool
        Also make sure that every label with at least 2 rows has a row in the evaluation
        split(s) (as many of them as its rows allow while one row stays in training).
    eval_splits : sequence of int, optional
        Which splits evaluate. Default: every split but the first when ``ratios`` are
        given as proportions (train, val, test), every fold when ``ratios`` is an int.

    Returns
    -------
    ndarray of int64, shape (n_rows,)
        The split id (``0 .. n_splits - 1``) of every row.

    Notes
    -----
    *Deviations from [1]_.* Ties between labels are broken by one random permutation of
    the labels drawn at the start (the lowest rank wins), not by a fresh draw per step;
    each tied label is equally likely to come first, and the whole run is decided by the
    one generator. Ties between splits use one random key per row drawn up front.

    *Groups.* Rows of a group are merged into one instance whose count for label ``i``
    is the number of its rows with ``i`` and whose weight is its row count; the algorithm
    then runs on groups with these counts (``c_j`` and ``c_ij`` fall by the group's
    counts when it is placed, and the label order uses remaining *rows*). Groups without
    labels fill the splits largest first. A split can miss its size by up to one group.

    *Rare labels (an addition to [1]_).* The algorithm already sends the rows of the
    rarest labels to different splits; ``spread_rare`` repairs the cases where it does not
    (a label whose rows were all placed by rarer labels, or ratios such as 0.8/0.1/0.1
    where a 2-row label's desired counts send both rows to train). A repair moves one row
    (group) holding the label from a split that keeps another copy into a split that
    lacks it, choosing a row whose move leaves every other label in at least as many
    splits as its target (so no earlier repair is undone), fewest labels first; without
    groups it then moves back a row from the receiving split that removes no label from
    it (an unlabelled one first), so sizes do not drift. A label whose every candidate row
    is blocked keeps its shortfall, and :func:`~mlbalance.split.split_report` names the
    splits that lack it. The repair pass is compiled too (numba; it makes the same moves
    as the pure-Python pass it replaced) and costs about as much as the algorithm itself
    at 100,000 labels; :func:`stratified_split` returns every move it made.
    """
    return stratified_split(
        y,
        ratios,
        order=order,
        groups=groups,
        shuffle=shuffle,
        random_state=random_state,
        spread_rare=spread_rare,
        ensure_eval_labels=ensure_eval_labels,
        eval_splits=eval_splits,
    ).ids


def _eval_mask(ratios: Any, k: int, eval_splits: Sequence[int] | None) -> np.ndarray:
    if eval_splits is None:
        eval_idx = np.arange(k) if isinstance(ratios, (int, np.integer)) else np.arange(1, k)
    else:
        eval_idx = np.unique(np.asarray(list(eval_splits), dtype=np.int64))
        if eval_idx.min() < 0 or eval_idx.max() >= k:
            raise ParameterError(
                f"eval_splits must be split ids in 0..{k - 1}, got {eval_splits!r}",
                param="eval_splits",
            )
    mask = np.zeros(k, dtype=bool)
    mask[eval_idx] = True
    return mask


def _instances(
    labels: Any, groups: Any, k: int
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None, sp.csr_matrix | None]:
    """Instance x label counts, rows per instance, group codes and the group matrix."""
    base = _int_csr(labels.matrix)
    if groups is None:
        return base, np.ones(labels.n_rows, dtype=np.int64), None, None
    codes, n_groups = encode_groups(groups, labels.n_rows)
    if n_groups < k:
        raise ParameterError(
            f"cannot split {n_groups} groups into {k} splits: more splits than groups",
            param="groups",
        )
    gmat = _group_matrix(codes, n_groups)
    inst_labels = _int_csr((gmat @ base).tocsr())
    inst_labels.sort_indices()
    weights = np.bincount(codes, minlength=n_groups).astype(np.int64)
    return inst_labels, weights, codes, gmat


def stratified_split(
    y: Any,
    ratios: int | Sequence[float] | np.ndarray,
    *,
    order: int = 1,
    groups: Any = None,
    shuffle: bool = False,
    random_state: RandomState = None,
    spread_rare: bool = True,
    ensure_eval_labels: bool = False,
    eval_splits: Sequence[int] | None = None,
    progress: bool | None = None,
) -> StratifiedSplit:
    """:func:`iterative_stratification`, returning also what the repair pass moved.

    Same parameters and the same split ids; ``progress`` shows a bar over the labels the
    repair pass works on (default: when stderr is a terminal). Used by ``mlbalance split``
    to report what ``ensure_eval_labels`` and the rare-label spreading changed.

    Returns
    -------
    StratifiedSplit
    """
    validate_params(
        STRATIFY_CONSTRAINTS,
        {
            "order": order,
            "shuffle": shuffle,
            "random_state": random_state,
            "spread_rare": spread_rare,
            "ensure_eval_labels": ensure_eval_labels,
            "eval_splits": eval_splits,
        },
    )
    labels = as_label_matrix(y)
    n = labels.n_rows
    if n == 0:
        raise InputError("label matrix has no rows: nothing to split")
    r = check_ratios(ratios)
    k = r.shape[0]
    if k > n:
        raise ParameterError(
            f"cannot split {n} rows into {k} splits: more splits than rows", param="ratios"
        )
    if k > 32767:
        raise ParameterError(f"at most 32767 splits are supported, got {k}", param="ratios")
    eval_mask = _eval_mask(ratios, k, eval_splits)
    rng = make_rng(random_state)
    inst_labels, weights, codes, gmat = _instances(labels, groups, k)
    n_inst = inst_labels.shape[0]
    if order == 1:
        units = inst_labels
    else:
        pairs = _pair_matrix(labels.matrix)
        units = _int_csr((gmat @ pairs).tocsr()) if gmat is not None else pairs
        units.sort_indices()

    # Draw everything random from the one generator, in a fixed order.
    perm = rng.permutation(n_inst) if shuffle else None
    unit_rank = rng.permutation(units.shape[1]).astype(np.int64)
    inst_keys = rng.integers(0, 2**62, size=n_inst, dtype=np.int64)

    order_arr = np.arange(n_inst, dtype=np.int64) if perm is None else perm.astype(np.int64)
    has_units = np.diff(units.indptr) > 0
    empty = order_arr[~has_units[order_arr]]
    if groups is not None and empty.size:
        empty = empty[np.argsort(-weights[empty], kind="stable")]
    rank_unit = np.empty_like(unit_rank)
    rank_unit[unit_rank] = np.arange(unit_rank.size, dtype=np.int64)
    assign = iterative_assign(
        units.indptr.astype(np.int64, copy=False),
        units.indices.astype(np.int32, copy=False),
        units.data.astype(np.int32, copy=False),
        int(units.shape[1]),
        weights,
        order_arr,
        r,
        unit_rank,
        rank_unit,
        inst_keys,
        empty,
    )

    repairs = Repairs.none(ensure_eval=ensure_eval_labels)
    if spread_rare or ensure_eval_labels:
        repairs = spread_labels(
            assign,
            inst_labels,
            r,
            eval_mask=eval_mask,
            ensure_eval=ensure_eval_labels,
            swap_back=groups is None,
            progress=progress,
        )
    if codes is None:
        return StratifiedSplit(assign, repairs)
    first_row = np.full(weights.size, -1, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(codes.size - 1, -1, -1, dtype=np.int64)
    rows = repairs.with_instances(first_row[repairs.instance], weights[repairs.instance])
    return StratifiedSplit(assign[codes], rows)
