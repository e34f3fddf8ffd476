"""The rare-label repair pass of iterative stratification, compiled with numba.

After Algorithm 1 of Sechidis et al. (2011) has placed every row, a label with ``c`` rows may
sit in fewer than ``min(c, k)`` of the ``k`` splits (its rows were all placed by rarer labels,
or ratios such as 0.8/0.1/0.1 send both rows of a 2-row label to train). This pass moves
single instances (rows, or groups) so that each label reaches as many splits as it can, and,
with ``ensure_eval``, a row in the evaluation splits. The rules are documented in
:func:`mlbalance.split.iterative_stratification`; :func:`spread_labels` applies them and
returns every move it made (:class:`Repairs`), so that callers can say what changed.

The loop used to be Python over numpy slices (killed after 300 s on 20,000 rows x 10,000
labels at 0.8/0.1/0.1); it is now numba (:mod:`._repair_core`) over CSR/CSC arrays and makes the
very same moves (tests compare the two on random inputs, move for move), with the per-label
"splits holding the label" counts kept up to date instead of recounted for every candidate, and
a swap-back search that skips rows it already found blocked (0.1 s there, 2x the algorithm
itself at 200,000 x 100,000; BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance._progress import progress_bar
from mlbalance.split._repair_core import KIND_NAMES, spread_kernel

__all__ = ["KIND_NAMES", "Repairs", "describe_repairs", "spread_labels"]

_CHUNK = 1024  # labels per kernel call (progress is reported between calls)


@dataclass(frozen=True)
class Repairs:
    """Every move of the repair pass, in the order made, and the targets left unmet.

    Attributes
    ----------
    instance, source, target, label : ndarray of int64
        Per move: the instance moved (a row; a group id with groups), the split it left, the
        split it joined and the label the move was made for.
    kind : ndarray of int8
        Per move, an index into :data:`KIND_NAMES`: 0 spreads a label over more splits,
        1 gives a label a row in the evaluation splits, 2 moves a row back to keep sizes.
    unmet_spread, unmet_eval : ndarray of int64
        Labels still in fewer splits than ``min(rows, splits)``, and (with ``ensure_eval``)
        still short of their evaluation-split target: every candidate move was blocked.
    ensure_eval : bool
        Whether evaluation-split targets were asked for.
    rows : ndarray of int64
        Rows per move (the group's size with groups; 1 otherwise).
    """

    instance: np.ndarray
    source: np.ndarray
    target: np.ndarray
    label: np.ndarray
    kind: np.ndarray
    unmet_spread: np.ndarray
    unmet_eval: np.ndarray
    ensure_eval: bool = False
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.rows.size != self.instance.size:
            object.__setattr__(self, "rows", np.ones(self.instance.size, dtype=np.int64))

    @classmethod
    def none(cls, *, ensure_eval: bool = False) -> Repairs:
        """No move at all."""
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, np.zeros(0, dtype=np.int8), z, z, ensure_eval)

    @property
    def n_moves(self) -> int:
        """Number of moves, of every kind."""
        return int(self.instance.size)

    def of_kind(self, kind: str) -> np.ndarray:
        """Boolean mask of the moves of *kind* (one of :data:`KIND_NAMES`)."""
        return self.kind == KIND_NAMES.index(kind)

    def with_instances(self, instance: np.ndarray, rows: np.ndarray) -> Repairs:
        """The same moves with ``instance`` and ``rows`` replaced (groups as their first rows)."""
        return replace(self, instance=instance, rows=rows)


def _targets(
    n_with: np.ndarray, k: int, n_eval: int, ensure_eval: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per label: splits to reach, ``min(c, k)``, and evaluation splits to reach."""
    need_total = np.minimum(n_with, k).astype(np.int64)
    need_eval = np.zeros(n_with.size, dtype=np.int64)
    if ensure_eval:
        has_train = n_eval < k
        extra = np.minimum(n_with - (1 if has_train else 0), n_eval)
        need_eval = np.where(n_with >= 2, np.maximum(extra, 0), 0).astype(np.int64)
    return need_total, need_eval


def spread_labels(
    assign: np.ndarray,
    inst_labels: sp.csr_matrix,
    ratios: np.ndarray,
    *,
    eval_mask: np.ndarray,
    ensure_eval: bool,
    swap_back: bool,
    progress: bool | None = None,
) -> Repairs:
    """Move instances so that rare labels reach as many splits as they can (in place).

    Targets per label with ``c`` instances: present in ``min(c, k)`` splits; with
    ``ensure_eval`` and ``c >= 2``, present in ``min(c - 1, n_eval)`` evaluation splits
    when a training split exists (``min(c, n_eval)`` otherwise). Labels short of a target
    are repaired from the rarest; see :func:`~mlbalance.split.iterative_stratification` for
    the rules.

    Parameters
    ----------
    assign : ndarray of int64
        The split of every instance; updated in place.
    inst_labels : csr_matrix
        Instance x label counts (int; > 1 for groups).
    ratios : ndarray of float64
        Desired split proportions.
    eval_mask : ndarray of bool
        Which splits evaluate.
    ensure_eval, swap_back : bool
        Evaluation-split targets; move a row back after each move (keeps sizes; not with
        groups).
    progress : bool, optional
        Show a progress bar over the labels to repair (default: on a terminal).

    Returns
    -------
    Repairs
    """
    k = ratios.shape[0]
    n_inst, n_labels = inst_labels.shape
    if n_labels == 0 or n_inst == 0:
        return Repairs.none(ensure_eval=ensure_eval)
    indptr = inst_labels.indptr.astype(np.int64, copy=False)
    indices = inst_labels.indices.astype(np.int32, copy=False)
    data = inst_labels.data.astype(np.int64, copy=False)
    split_of_entry = np.repeat(assign, np.diff(indptr)).astype(np.int64)
    code = indices.astype(np.int64) * k + split_of_entry
    cnt = np.bincount(code, weights=data, minlength=n_labels * k).astype(np.int64)
    cnt = cnt.reshape(n_labels, k)
    n_with = np.bincount(indices, minlength=n_labels).astype(np.int64)
    totals = cnt.sum(axis=1)
    present = cnt > 0
    n_here = present.sum(axis=1).astype(np.int64)
    n_here_eval = present[:, eval_mask].sum(axis=1).astype(np.int64)
    need_total, need_eval = _targets(n_with, k, int(eval_mask.sum()), ensure_eval)
    todo = np.flatnonzero((n_here < need_total) | (n_here_eval < need_eval))
    if todo.size == 0:
        return Repairs.none(ensure_eval=ensure_eval)
    todo = todo[np.argsort(totals[todo], kind="stable")].astype(np.int64)

    csc = inst_labels.tocsc()
    csc.sort_indices()
    csr = (indptr, indices, data)
    csc_arrays = (
        csc.indptr.astype(np.int64, copy=False),
        csc.indices.astype(np.int64, copy=False),
        csc.data.astype(np.int64, copy=False),
    )
    state = (cnt, n_here, n_here_eval)
    targets = (need_total, need_eval)
    row_size = np.diff(indptr)
    order_by_size = np.argsort(row_size, kind="stable").astype(np.int64)
    moved = np.zeros(n_inst, dtype=np.bool_)
    # a destination's list of rows is made once, when it first receives a row: all of them
    # together hold at most every instance once plus the instances moved before
    max_moves = 2 * k * todo.size
    n_back = n_inst + max_moves if swap_back else 0
    back = (
        np.empty(n_back, dtype=np.int64),  # items
        np.zeros(k, dtype=np.int64),  # start
        np.full(k, -1, dtype=np.int64),  # length
        np.zeros(k, dtype=np.int64),  # cursor
        np.zeros(1, dtype=np.int64),  # fill
        np.full(n_inst, -1, dtype=np.int64),  # pos
        np.full(n_back, -1, dtype=np.int64),  # seen_label
        np.zeros(n_back, dtype=np.int64),  # seen_mask
        np.zeros(n_back, dtype=np.int64),  # seen_version
        np.zeros(n_labels, dtype=np.int64),  # blocks
        np.zeros(n_labels, dtype=np.int64),  # version
        np.zeros((k, k), dtype=np.int64),  # end
        np.zeros((k, k), dtype=np.int64),  # dirty
        np.zeros((k, k), dtype=np.bool_),  # known
    )
    logs = tuple(np.empty(2 * k * min(_CHUNK, todo.size), dtype=np.int64) for _ in range(5))
    parts: list[list[np.ndarray]] = [[] for _ in range(5)]
    bar = progress_bar(
        desc="spreading rare labels", total=int(todo.size), unit="label", enabled=progress
    )
    try:
        for start in range(0, todo.size, _CHUNK):
            chunk = todo[start : start + _CHUNK]
            n_log = spread_kernel(
                chunk,
                assign,
                csr,
                csc_arrays,
                state,
                targets,
                totals,
                ratios,
                eval_mask,
                bool(ensure_eval),
                bool(swap_back),
                row_size,
                order_by_size,
                moved,
                back,
                logs,
            )
            for part, log in zip(parts, logs, strict=True):
                part.append(log[:n_log].copy())
            bar.update(chunk.size)
    finally:
        bar.close()
    inst, src, dst, lab, kind = (np.concatenate(p) for p in parts)
    return Repairs(
        instance=inst,
        source=src,
        target=dst,
        label=lab,
        kind=kind.astype(np.int8),
        unmet_spread=np.flatnonzero(n_here < need_total).astype(np.int64),
        unmet_eval=np.flatnonzero(n_here_eval < need_eval).astype(np.int64),
        ensure_eval=bool(ensure_eval),
    )


def describe_repairs(
    repairs: Repairs, label_names: Sequence[str], split_names: Sequence[str]
) -> dict[str, Any]:
    """A JSON-ready account of the repair pass: what moved, why, and what stayed unmet.

    ``spread_rare`` and ``ensure_eval_labels`` each give the moves made for that reason, the
    rows moved and the labels they were for (``ensure_eval_labels`` also lists every move:
    row, label, from, to; a group appears as its first row), and the labels whose target
    stayed unmet; ``swapped_back`` counts the rows moved the other way to keep split sizes.
    """
    names = list(label_names)
    splits = list(split_names)

    def part(kind: str) -> dict[str, Any]:
        mask = repairs.of_kind(kind)
        return {
            "moves": int(mask.sum()),
            "rows": int(repairs.rows[mask].sum()),
            "labels": [names[i] for i in np.unique(repairs.label[mask])],
        }

    evals = repairs.of_kind("eval")
    back = part("swap_back")
    return {
        "spread_rare": {
            **part("spread"),
            "unmet": [names[i] for i in repairs.unmet_spread],
        },
        "ensure_eval_labels": {
            "requested": repairs.ensure_eval,
            **part("eval"),
            "moved": [
                {
                    "row": int(r),
                    "label": names[int(b)],
                    "from": splits[int(s)],
                    "to": splits[int(d)],
                }
                for r, b, s, d in zip(
                    repairs.instance[evals],
                    repairs.label[evals],
                    repairs.source[evals],
                    repairs.target[evals],
                    strict=True,
                )
            ],
            "unmet": [names[i] for i in repairs.unmet_eval],
        },
        "swapped_back": {"moves": back["moves"], "rows": back["rows"]},
    }
