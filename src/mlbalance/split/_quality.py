"""How good a multilabel split is: LD, ED, FZ, labels absent per split, label counts.

Measures of Sechidis, Tsoumakas and Vlahavas (2011), "On the stratification of multi-label
data", Section 4:

* **LD** (label distribution): for each label, the mean over splits of the absolute
  difference between the split's positive/negative ratio and the whole set's, averaged
  over labels. 0 is perfect.
* **ED** (example distribution): mean over splits of ``| |S_j| - r_j |D| |``, how far each
  split's size is from the desired size, in rows.
* **FZ**: (split, label) pairs where the split has no row of a label that has at least as
  many rows as there are splits, i.e. misses that could have been avoided. (Sechidis et al.
  count *folds* with such a label; counting pairs, as the issue asks, is finer.)
* **FLZ**: (split, label) pairs with no row of the label, over every label with >= 1 row.

Given the :class:`~mlbalance.split.Repairs` of :func:`~mlbalance.split.stratified_split`, the
report also says what the rare-label repair pass moved (``repairs``): rows moved to spread rare
labels, rows moved to give labels a row in the evaluation splits (``ensure_eval_labels``, each
move listed), rows swapped back to keep sizes, and the labels whose target stayed unmet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbalance.labels import as_label_matrix
from mlbalance.split._iterative import check_ratios
from mlbalance.split._repair import Repairs, describe_repairs

__all__ = ["SplitReport", "split_label_counts", "split_report"]


def split_label_counts(y: Any, split_ids: np.ndarray, n_splits: int) -> np.ndarray:
    """Rows of each label in each split: int64 array ``(n_splits, n_labels)``."""
    labels = as_label_matrix(y)
    m = labels.matrix
    rows = np.repeat(split_ids.astype(np.int64), np.diff(m.indptr))
    flat = np.bincount(rows * labels.n_labels + m.indices, minlength=n_splits * labels.n_labels)
    return flat.reshape(n_splits, labels.n_labels).astype(np.int64)


@dataclass
class SplitReport:
    """Quality of one split of a multilabel dataset (see the module docstring).

    Attributes
    ----------
    split_names : list of str
    sizes, desired_sizes : list
        Rows per split, and ``r_j * n_rows``.
    ld, ed : float
        Label and example distribution (Sechidis et al. 2011); lower is better.
    fz, flz : int
        Avoidable and total (split, label) pairs without a row of the label.
    label_counts : ndarray, shape (n_splits, n_labels)
    label_names : list of str
    absent : dict
        Split name -> names of the labels (with >= 1 row overall) that it lacks.
    rare_labels : list of str
        Labels with fewer rows than there are splits: they cannot reach every split.
    repairs : dict or None
        What the rare-label repair pass moved (see :func:`describe_repairs`), when known.
    """

    split_names: list[str]
    sizes: list[int]
    desired_sizes: list[float]
    ratios: list[float]
    ld: float
    ed: float
    fz: int
    flz: int
    label_counts: np.ndarray
    label_names: list[str]
    absent: dict[str, list[str]]
    rare_labels: list[str]
    repairs: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Rows in all splits together."""
        return int(sum(self.sizes))

    def to_dict(self, *, per_label: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (``per_label=False`` drops the per-label counts)."""
        out: dict[str, Any] = {
            "n_rows": self.n_rows,
            "n_labels": len(self.label_names),
            "n_splits": len(self.split_names),
            "splits": [
                {
                    "name": name,
                    "rows": int(size),
                    "desired_rows": round(float(want), 3),
                    "ratio": float(ratio),
                    "actual_ratio": (size / self.n_rows) if self.n_rows else 0.0,
                    "labels_absent": len(self.absent[name]),
                }
                for name, size, want, ratio in zip(
                    self.split_names, self.sizes, self.desired_sizes, self.ratios
                )
            ],
            "LD": self.ld,
            "ED": self.ed,
            "FZ": self.fz,
            "FLZ": self.flz,
            "rare_labels": list(self.rare_labels),
            "absent": {k: list(v) for k, v in self.absent.items()},
        }
        if self.repairs is not None:
            out["repairs"] = self.repairs
        if per_label:
            out["label_counts"] = {
                "labels": list(self.label_names),
                **{name: self.label_counts[j].tolist() for j, name in enumerate(self.split_names)},
            }
        out.update(self.extra)
        return out

    def summary(self, *, max_labels: int = 8) -> str:
        """A short human-readable table."""
        width = max(len(n) for n in self.split_names)
        lines = [f"{'split':<{width}}  {'rows':>10}  {'share':>6}  {'want':>6}  labels absent"]
        for j, name in enumerate(self.split_names):
            share = self.sizes[j] / self.n_rows if self.n_rows else 0.0
            lines.append(
                f"{name:<{width}}  {self.sizes[j]:>10,}  {share:>6.3f}  {self.ratios[j]:>6.3f}"
                f"  {len(self.absent[name])}"
            )
        lines.append(
            f"LD {self.ld:.3g}  ED {self.ed:.3g}  FZ {self.fz}  FLZ {self.flz}"
            f"  (rare labels, fewer rows than splits: {len(self.rare_labels)})"
        )
        for name in self.split_names:
            miss = self.absent[name]
            if miss:
                lines.append(f"  {name} lacks {len(miss)}: {_preview(miss, max_labels)}")
        if self.repairs is not None:
            lines.extend(_repair_lines(self.repairs, self.split_names, max_labels))
        return "\n".join(lines)


def _preview(names: list[str], limit: int) -> str:
    return ", ".join(names[:limit]) + (
        f", ... (+{len(names) - limit})" if len(names) > limit else ""
    )


def _repair_lines(rep: dict[str, Any], split_names: list[str], limit: int) -> list[str]:
    """What the repair pass changed, in words (see :func:`describe_repairs`)."""
    spread, evals, back = rep["spread_rare"], rep["ensure_eval_labels"], rep["swapped_back"]
    lines = []
    if spread["moves"]:
        lines.append(
            f"rare labels: moved {spread['rows']:,} row(s) so that {len(spread['labels']):,} "
            f"label(s) reach more splits: {_preview(spread['labels'], limit)}"
        )
    if spread["unmet"]:
        lines.append(
            f"  {len(spread['unmet']):,} label(s) stay in fewer splits than their rows allow "
            f"(every move would take another label out of a split): "
            f"{_preview(spread['unmet'], limit)}"
        )
    if evals["requested"]:
        targets = (
            "/".join(sorted({m["to"] for m in evals["moved"]}, key=split_names.index))
            or "the evaluation splits"
        )
        if evals["moves"]:
            lines.append(
                f"evaluation labels: moved {evals['rows']:,} row(s) into {targets} so that "
                f"{len(evals['labels']):,} label(s) have a row there: "
                f"{_preview(evals['labels'], limit)}"
            )
        elif not evals["unmet"]:
            lines.append(
                "evaluation labels: nothing to move; every label with >= 2 rows already had a "
                "row in each evaluation split its rows allow (one kept for training)"
            )
        if evals["unmet"]:
            lines.append(
                f"  {len(evals['unmet']):,} label(s) still lack an evaluation row (every move "
                f"was blocked): {_preview(evals['unmet'], limit)}"
            )
    if back["moves"]:
        lines.append(f"  {back['rows']:,} row(s) moved the other way to keep the split sizes")
    return lines


def split_report(
    y: Any,
    split_ids: np.ndarray,
    ratios: int | Sequence[float] | np.ndarray,
    *,
    split_names: Sequence[str] | None = None,
    repairs: Repairs | None = None,
) -> SplitReport:
    """Measure a split: LD, ED, FZ, FLZ, label counts and absent labels per split.

    Parameters
    ----------
    y : LabelMatrix, array-like or sparse matrix
        The label matrix that was split.
    split_ids : ndarray of int, shape (n_rows,)
        The split of each row (as returned by ``iterative_stratification``).
    ratios : int or sequence of float
        The desired ratios (or fold count) the split aimed at.
    split_names : sequence of str, optional
        Names of the splits; default ``split-0``, ``split-1``, ...
    repairs : Repairs, optional
        ``stratified_split(...).repairs``: the report then says what the rare-label repair
        pass moved (the ``repairs`` key of :meth:`SplitReport.to_dict`, and the summary).

    Returns
    -------
    SplitReport
    """
    labels = as_label_matrix(y)
    r = check_ratios(ratios)
    k = r.shape[0]
    ids = np.asarray(split_ids, dtype=np.int64)
    names = [f"split-{j}" for j in range(k)] if split_names is None else list(split_names)
    n = labels.n_rows
    cnt = split_label_counts(labels, ids, k)
    sizes = np.bincount(ids, minlength=k).astype(np.int64)
    total = cnt.sum(axis=0)
    used = total > 0

    def ratio(pos: np.ndarray, size: np.ndarray | int) -> np.ndarray:
        # positives / negatives; the denominator is floored at 1 when a split is all positive
        return pos / np.maximum(size - pos, 1)

    overall = ratio(total, n)
    per_split = ratio(cnt, sizes[:, None])
    diffs = np.abs(per_split - overall[None, :])[:, used]
    ld = float(diffs.mean()) if diffs.size else 0.0
    ed = float(np.abs(sizes - r * n).mean())
    zero = cnt == 0
    fz = int((zero & (total >= k)[None, :]).sum())
    flz = int((zero & used[None, :]).sum())
    vocab = list(labels.names)
    absent = {names[j]: [vocab[i] for i in np.flatnonzero(zero[j] & used)] for j in range(k)}
    rare = [vocab[i] for i in np.flatnonzero(used & (total < k))]
    return SplitReport(
        split_names=names,
        sizes=sizes.tolist(),
        desired_sizes=(r * n).tolist(),
        ratios=r.tolist(),
        ld=ld,
        ed=ed,
        fz=fz,
        flz=flz,
        label_counts=cnt,
        label_names=vocab,
        absent=absent,
        rare_labels=rare,
        repairs=None if repairs is None else describe_repairs(repairs, vocab, names),
    )
