"""Per-label decision thresholds tuned on validation scores (numpy only).

For each label the validation scores are sorted once (``O(n log n)``, plus a sort of its
positives' scores); every distinct score is a candidate cut ("predict the rows scoring at least
this"), and the counts of true and predicted positives at all cuts follow from the two sorted
arrays (:func:`mlbalance.metrics.cut_curve`). Then

* ``mode="f1"``: the cut that maximises the label's F1, ``2 tp / (P + predicted)`` (the highest
  cut among ties);
* ``mode="recall"``: the highest cut whose recall reaches ``target_recall``.

The threshold is placed midway between the chosen cut's score and the next lower distinct score
(half the lowest score when every row is predicted), so small score perturbations do not flip
decisions, then clipped into ``[1e-12, 1 - 1e-12]`` (so a cut that would include scores of
exactly 0 — sigmoid underflow — stops just above them). A label is predicted when
``score >= threshold``, the rule :mod:`mlbalance.metrics` uses.

Labels with too few validation positives
    A label with fewer than ``min_positives`` positives in validation (including none) cannot be
    tuned reliably — with none, F1 is 0 at every cut and "maximising" it would give a threshold
    that never or always fires. It falls back:

    * ``fallback="global"``: the global threshold, one value tuned for micro F1 over all labels
      and rows (or, in recall mode, reaching ``target_recall`` of all positives);
    * ``fallback="shrink"``: a blend toward the global threshold weighted by positive count,
      ``t = (P t_label + k t_global) / (P + k)`` with ``k = shrink`` (a pseudo-count); a label with
      no positives gets ``t_global``;
    * ``fallback="rare"``: the median threshold of the ``rare_k`` tuned labels with the fewest
      validation positives, for every such label (with or without positives). The global cut is
      tuned for micro F1, i.e. for the frequent labels; a label too rare to tune scores on the
      scale of the rarest labels that could be tuned, so their cuts are the better guess.

    :attr:`ThresholdResult.fallback` records each such label and why.

Smoothing every label
    With ``smoothing=K > 0`` every tuned threshold is pulled toward the global one by the same
    pseudo-count rule, ``t = (P t_label + K t_global) / (P + K)``: a label with many validation
    positives keeps nearly its own cut, one with a few (whose F1-optimal cut is noisy) moves
    most of the way. This is the shrinkage estimator of empirical Bayes applied to thresholds;
    it pays off with losses that already put the labels' operating points near one another
    (ASL, distribution-balanced, bounded weights), where per-label cuts mainly fit validation
    noise (the recipe study in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance.errors import InputError, ParameterError
from mlbalance.metrics import check_scores, cut_curve, label_columns, label_csr

__all__ = ["ThresholdResult", "apply_thresholds", "tune_thresholds"]

EPS = 1e-12
FORMAT = "mlbalance-thresholds"
MODES = ("f1", "recall")
FALLBACKS = ("global", "shrink", "rare")
GLOBAL_GRID = 2048


@dataclass
class ThresholdResult:
    """Tuned thresholds and how each was chosen.

    Attributes
    ----------
    thresholds : numpy.ndarray of float64, shape (labels,)
        Predict label ``c`` when ``score >= thresholds[c]``.
    fallback : dict of int to str
        Label index -> why it did not get its own tuned threshold.
    global_threshold : float
        The single threshold the fallback uses.
    positives : numpy.ndarray of int64
        Validation positives per label.
    mode, target_recall, min_positives, strategy, shrink
        The tuning settings (``strategy`` is the ``fallback`` argument).
    """

    thresholds: np.ndarray
    fallback: dict[int, str] = field(default_factory=dict)
    global_threshold: float = 0.5
    positives: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mode: str = "f1"
    target_recall: float | None = None
    min_positives: int = 3
    strategy: str = "global"
    shrink: float = 3.0
    smoothing: float = 0.0

    def apply(self, scores: Any) -> np.ndarray:
        """Boolean predictions ``scores >= thresholds``, shape (rows, labels)."""
        return apply_thresholds(scores, self.thresholds)

    def to_json(self, names: Sequence[str]) -> dict[str, Any]:
        """A JSON-able dict keyed by label name (what ``thresholds.json`` holds)."""
        names = [str(n) for n in names]
        if len(names) != self.thresholds.size:
            raise ParameterError(
                f"{len(names)} label names given for {self.thresholds.size} thresholds"
            )
        return {
            "format": FORMAT,
            "version": 1,
            "rule": "score >= threshold",
            "mode": self.mode,
            "target_recall": self.target_recall,
            "min_positives": int(self.min_positives),
            "fallback_strategy": self.strategy,
            "shrink": float(self.shrink),
            "smoothing": float(self.smoothing),
            "global_threshold": float(self.global_threshold),
            "labels": names,
            "thresholds": [float(t) for t in self.thresholds],
            "val_positives": [int(p) for p in self.positives] if self.positives.size else None,
            "fallback": {names[i]: reason for i, reason in sorted(self.fallback.items())},
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any] | str, names: Sequence[str] | None = None
    ) -> ThresholdResult:
        """Read :meth:`to_json` output (a dict or a JSON string).

        Parameters
        ----------
        data : dict or str
        names : sequence of str, optional
            The label order wanted (e.g. the model's ``id2label``); thresholds are re-ordered to
            it. Every name must be in the file.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"thresholds: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"thresholds: not a {FORMAT} document")
        try:
            file_names = [str(n) for n in data["labels"]]
            values = np.asarray(data["thresholds"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"thresholds: missing or malformed field ({exc})") from None
        if values.shape != (len(file_names),) or not np.isfinite(values).all():
            raise InputError(
                f"thresholds: {values.size} finite values expected for {len(file_names)} labels"
            )
        positives = np.asarray(data.get("val_positives") or [], dtype=np.int64)
        index = {n: i for i, n in enumerate(file_names)}
        order = np.arange(len(file_names))
        if names is not None:
            missing = [str(n) for n in names if str(n) not in index]
            if missing:
                raise InputError(
                    f"thresholds: no threshold for label(s) {missing[:5]} ({len(missing)} missing)"
                )
            order = np.array([index[str(n)] for n in names], dtype=np.int64)
        new_pos = {int(j): i for i, j in enumerate(order)}
        fallback = {
            new_pos[index[n]]: str(reason)
            for n, reason in (data.get("fallback") or {}).items()
            if n in index and index[n] in new_pos
        }
        return cls(
            thresholds=values[order],
            fallback=fallback,
            global_threshold=float(data.get("global_threshold", 0.5)),
            positives=positives[order]
            if positives.size == len(file_names)
            else np.zeros(0, np.int64),
            mode=str(data.get("mode", "f1")),
            target_recall=data.get("target_recall"),
            min_positives=int(data.get("min_positives", 3)),
            strategy=str(data.get("fallback_strategy", "global")),
            smoothing=float(data.get("smoothing", 0.0)),
            shrink=float(data.get("shrink", 3.0)),
        )


def apply_thresholds(scores: Any, thresholds: Any) -> np.ndarray:
    """Boolean predictions ``scores >= thresholds`` (a scalar or one per label)."""
    s = check_scores(scores)
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 1 and thr.size != s.shape[1]:
        raise ParameterError(f"{thr.size} thresholds for {s.shape[1]} label columns")
    return s >= thr


# --------------------------------------------------------------------------------------------
# the cut-point search
# --------------------------------------------------------------------------------------------
def _midpoint(upper: float, lower: float | None) -> float:
    """Midway between a chosen cut score and the next lower score (or 0), in (0, 1)."""
    t = upper / 2.0 if lower is None else (upper + lower) / 2.0
    return float(np.clip(t, EPS, 1.0 - EPS))


def _best_cut(
    tp: np.ndarray, n_pred: np.ndarray, n_pos: int, mode: str, target: float | None
) -> int:
    """Index of the chosen cut among the distinct-score cuts (descending scores)."""
    if mode == "f1":
        return int(np.argmax(2.0 * tp / (n_pos + n_pred)))
    assert target is not None
    reached = np.flatnonzero(tp >= target * n_pos - 1e-9 * n_pos)
    return int(reached[0]) if reached.size else tp.size - 1


def _tune_label(
    ascending: np.ndarray, positive_scores: np.ndarray, mode: str, target: float | None
) -> float:
    """The threshold of one label from its sorted scores and its positives' scores."""
    cuts, tp, n_pred, next_lower = cut_curve(ascending, positive_scores, sorted_ascending=True)
    k = _best_cut(
        tp.astype(np.float64), n_pred.astype(np.float64), positive_scores.size, mode, target
    )
    lower = None if k + 1 == cuts.size else float(next_lower[k])
    return _midpoint(float(cuts[k]), lower)


def _count_at_least(scores: np.ndarray, values: np.ndarray, chunk_rows: int) -> np.ndarray:
    """How many of all ``scores`` are ``>= v`` for each ascending ``v`` (chunked, one pass)."""
    bins = np.zeros(values.size + 1, dtype=np.int64)
    for start in range(0, scores.shape[0], chunk_rows):
        block = scores[start : start + chunk_rows].ravel()
        block = block[block >= values[0]]  # the rest count for no value
        # searchsorted 'right' = how many values are <= x; x >= values[j] iff that is > j
        bins += np.bincount(np.searchsorted(values, block, side="right"), minlength=values.size + 1)
    return np.cumsum(bins[::-1])[::-1][1:]


def _next_lower(scores: np.ndarray, cut: float, chunk_rows: int) -> float | None:
    """The largest score below ``cut`` over all rows and labels (``None`` if there is none)."""
    lower = -np.inf
    for start in range(0, scores.shape[0], chunk_rows):
        block = scores[start : start + chunk_rows]
        below = block[block < cut]
        if below.size:
            lower = max(lower, float(below.max()))
    return None if lower == -np.inf else lower


class _GlobalSearch:
    """The global threshold: micro-F1 maximum over all labels (or target recall of all positives).

    No sort of all ``rows x labels`` scores: an F1-optimal cut always sits at a positive's score
    (moving below a negative only adds a false positive), so the candidates are the distinct
    positive scores. Predicted counts at up to ``GLOBAL_GRID`` of them (evenly spaced in rank)
    are summed from each label's sorted column during the per-label scan (:meth:`add_column`);
    then one chunked pass counts exactly at every candidate between the best grid point's
    neighbours. With no more than ``GLOBAL_GRID`` distinct positive scores the result is the
    exact micro-F1 optimum; beyond, the optimum within that neighbourhood of the grid optimum.
    """

    def __init__(self, y: sp.csr_matrix, scores: np.ndarray, mode: str, target: float | None):
        rows = np.repeat(np.arange(y.shape[0]), np.diff(y.indptr))
        self.pos_scores = np.sort(scores[rows, y.indices])
        self.mode, self.target = mode, target
        self.cand = np.unique(self.pos_scores)  # ascending, the dtype of the scores
        self.idx = np.unique(
            np.linspace(0, max(self.cand.size - 1, 0), min(GLOBAL_GRID, self.cand.size))
            .round()
            .astype(np.int64)
        )
        self.coarse = self.cand[self.idx]
        self.coarse_pred = np.zeros(self.coarse.size, dtype=np.int64)
        self.needs_columns = mode == "f1" and self.pos_scores.size > 0

    def add_column(self, ascending: np.ndarray) -> None:
        """Add one label's sorted scores to the predicted counts at the grid points."""
        self.coarse_pred += ascending.size - np.searchsorted(ascending, self.coarse, side="left")

    def _tp(self, values: np.ndarray) -> np.ndarray:
        return self.pos_scores.size - np.searchsorted(self.pos_scores, values, side="left")

    def threshold(self, scores: np.ndarray, chunk_rows: int) -> float:
        n_pos = self.pos_scores.size
        if n_pos == 0:
            return 0.5
        if self.mode == "f1":
            f1 = 2.0 * self._tp(self.coarse) / (n_pos + self.coarse_pred)
            g = self.idx.size - 1 - int(np.argmax(f1[::-1]))  # the highest cut among ties
            lo = self.idx[max(g - 1, 0)]
            hi = self.idx[min(g + 1, self.idx.size - 1)]
            fine = self.cand[lo : hi + 1]
            f1_fine = 2.0 * self._tp(fine) / (n_pos + _count_at_least(scores, fine, chunk_rows))
            cut = fine[fine.size - 1 - int(np.argmax(f1_fine[::-1]))]
        else:
            assert self.target is not None
            # the highest cut keeping target * P positives: a quantile of the positive scores
            need = int(np.ceil(self.target * n_pos - 1e-9 * n_pos))
            cut = self.pos_scores[n_pos - max(need, 1)]
        return _midpoint(float(cut), _next_lower(scores, float(cut), chunk_rows))


def _guard_rate(
    thresholds: np.ndarray,
    reasons: dict[int, str],
    col: np.ndarray,
    c: int,
    allowed: float,
    *,
    tuned: bool = False,
) -> None:
    """Raise label *c*'s threshold so that at most ``ceil(allowed)`` rows of *col* reach it."""
    k = int(np.ceil(allowed))
    if k >= col.size:
        return
    top = np.sort(col)[::-1]
    if top[k - 1] <= thresholds[c] or top[k] < thresholds[c]:
        return  # already predicts on at most k rows
    guard = float(np.clip(0.5 * (top[k - 1] + top[k]), EPS, 1.0 - EPS))
    if guard > thresholds[c]:
        thresholds[c] = guard
        why = f"raised to {guard:.4g} so it fires on at most {k} validation rows"
        if tuned:
            reasons[c] = f"its F1-best threshold fired on over {k} validation rows: {why}"
        else:
            reasons[c] += f"; {why}"


def _blend(own: float, global_t: float, n_pos: int, pseudo_count: float) -> float:
    """``(P own + k global) / (P + k)`` with ``P = n_pos >= 1``, clipped into (0, 1)."""
    w = n_pos / (n_pos + pseudo_count)
    return float(np.clip(w * own + (1.0 - w) * global_t, EPS, 1.0 - EPS))


def tune_thresholds(
    y_true: Any,
    scores: Any,
    *,
    mode: str = "f1",
    target_recall: float | None = None,
    min_positives: int = 3,
    fallback: str = "global",
    shrink: float = 3.0,
    max_rate: float | None = 10.0,
    smoothing: float = 0.0,
    rare_k: int = 10,
    chunk_rows: int = 65536,
) -> ThresholdResult:
    """Tune one threshold per label on validation scores.

    Parameters
    ----------
    y_true : LabelMatrix, scipy sparse matrix, dense 0/1 array or list of label lists
        Validation truth, shape ``(n, L)``.
    scores : array of float, shape (n, L)
        Validation probabilities in [0, 1].
    mode : {"f1", "recall"}, default "f1"
        Maximise each label's F1, or take the highest threshold reaching ``target_recall``.
    target_recall : float, optional
        In (0, 1]; required for ``mode="recall"``.
    min_positives : int, default 3
        Labels with fewer validation positives fall back (see the module docstring).
    fallback : {"global", "shrink", "rare"}, default "global"
    shrink : float, default 3.0
        The pseudo-count ``k`` of ``fallback="shrink"``.
    max_rate : float or None, default 10.0
        Guard on every threshold: it is raised (never lowered) until the label is predicted on
        at most ``ceil(max_rate * max(positives, 1))`` validation rows. A label the model cannot
        rank (its few positives score below most negatives) otherwise gets an "F1-optimal"
        threshold near 0 that fires on almost every row (F1 0.003 beats 0), and a fallback to
        the global threshold can do the same when a loss shifts a rare label's scores. A label
        with real skill is untouched: predicting more than 10x its positives caps its F1 at
        2/11. ``None`` turns the guard off.
    rare_k : int, default 10
        How many of the rarest tuned labels ``fallback="rare"`` takes the median of.
    smoothing : float, default 0.0
        Pseudo-count ``K`` pulling every tuned threshold toward the global threshold,
        ``t = (P t_label + K t_global) / (P + K)`` (see the module docstring); 0 turns it off.
    chunk_rows : int, default 65536
        Rows per block when scanning all scores for the global threshold (bounds memory).

    Returns
    -------
    ThresholdResult
    """
    if mode not in MODES:
        raise ParameterError(f"threshold mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "recall":
        if target_recall is None or not 0.0 < float(target_recall) <= 1.0:
            raise ParameterError(
                f"mode 'recall' needs target_recall in (0, 1], got {target_recall!r}"
            )
        target_recall = float(target_recall)
    if fallback not in FALLBACKS:
        raise ParameterError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    if int(min_positives) < 1:
        raise ParameterError(f"min_positives must be >= 1, got {min_positives}")
    if not shrink >= 0:
        raise ParameterError(f"shrink must be >= 0, got {shrink}")
    if int(rare_k) < 1:
        raise ParameterError(f"rare_k must be >= 1, got {rare_k}")
    if not smoothing >= 0:
        raise ParameterError(f"smoothing must be >= 0, got {smoothing}")
    if max_rate is not None and not max_rate > 0:
        raise ParameterError(f"max_rate must be > 0 or None, got {max_rate}")
    if chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be >= 1, got {chunk_rows}")
    y = label_csr(y_true)
    s = check_scores(scores, y.shape)
    if s.min() < 0.0 or s.max() > 1.0:
        raise InputError(
            f"scores must be probabilities in [0, 1] to tune thresholds, found values from "
            f"{s.min():.4g} to {s.max():.4g} (apply a sigmoid to logits first)"
        )
    target = target_recall if mode == "recall" else None
    csc = y.tocsc()
    positives = np.diff(csc.indptr).astype(np.int64)
    search = _GlobalSearch(y, s, mode, target)
    own_thresholds: dict[int, float] = {}
    scan = np.arange(y.shape[1]) if search.needs_columns else np.flatnonzero(positives > 0)
    for c, col in label_columns(s, scan):
        ascending = np.sort(col)
        if search.needs_columns:
            search.add_column(ascending)
        if positives[c] > 0:
            rows = csc.indices[csc.indptr[c] : csc.indptr[c + 1]]
            own_thresholds[c] = _tune_label(ascending, col[rows], mode, target)
    global_t = search.threshold(s, chunk_rows)
    thresholds = np.full(y.shape[1], global_t)
    reasons: dict[int, str] = {}
    tuned = [
        c
        for c in range(y.shape[1])
        if positives[c] >= min_positives and own_thresholds.get(c) is not None
    ]
    for c in tuned:
        n_pos = int(positives[c])
        thresholds[c] = _blend(own_thresholds[c], global_t, n_pos, smoothing)
        if max_rate is not None:
            _guard_rate(thresholds, reasons, s[:, c], c, max_rate * n_pos, tuned=True)
    rare_t = global_t
    if fallback == "rare" and tuned:
        rarest = sorted(tuned, key=lambda c: (int(positives[c]), c))[: int(rare_k)]
        rare_t = float(np.median(thresholds[rarest]))
    tuned_set = set(tuned)
    for c in range(y.shape[1]):
        if c in tuned_set:
            continue
        n_pos = int(positives[c])
        own = own_thresholds.get(c)
        if fallback == "rare":
            thresholds[c] = rare_t
            reasons[c] = (
                f"{n_pos} positive(s) in validation (< min_positives={min_positives}): median "
                f"threshold of the {min(int(rare_k), len(tuned))} rarest tuned labels"
                if tuned
                else f"{n_pos} positive(s) in validation: global threshold (no tuned label)"
            )
        elif n_pos == 0:
            reasons[c] = "no positives in validation: global threshold"
        elif fallback == "global":
            reasons[c] = (
                f"{n_pos} positive(s) in validation (< min_positives={min_positives}): "
                "global threshold"
            )
        else:
            assert own is not None
            w = n_pos / (n_pos + shrink)
            thresholds[c] = _blend(own, global_t, n_pos, shrink)
            reasons[c] = (
                f"{n_pos} positive(s) in validation (< min_positives={min_positives}): "
                f"shrunk toward the global threshold (weight {w:.2f} on its own)"
            )
        if max_rate is not None:
            _guard_rate(thresholds, reasons, s[:, c], c, max_rate * max(n_pos, 1))
    return ThresholdResult(
        thresholds=thresholds,
        fallback=reasons,
        global_threshold=global_t,
        positives=positives,
        mode=mode,
        target_recall=target_recall,
        min_positives=int(min_positives),
        strategy=fallback,
        shrink=float(shrink),
        smoothing=float(smoothing),
    )
