"""Scores of a fine-tuned run, kept small, and the threshold modes computed from them offline.

Storage (:func:`write_scores` / :func:`read_scores`). Each run keeps its dev and test scores
(sigmoid probabilities, float16) in one ``scores.npz``. A dense float16 matrix of the 500-label
synthetic set costs 1.25 MB per split, too much for ~80 runs brought back from a GPU machine, so
per label only the scores that a threshold can act on are kept: with ``P`` dev positives, the
``RATE * max(P, 1)`` highest dev scores (``RATE`` = 20) define the label's *floor* (never above
0.5), and every dev and test score at or above the floor is stored; the rest read back as 0.
Labels whose floor would keep more than half the rows are stored whole (floor 0).

What this keeps exact: the counts of every threshold ``t >= floor`` of a label, on dev and test,
hence every metric at such thresholds. The 0.5 cut is always exact; so is every threshold that
fires on at most ``RATE * max(P, 1)`` dev rows — all thresholds of
:func:`mlbalance.thresholds.tune_thresholds`, whose guard allows at most 10x. A mode that
goes below a floor is flagged (:func:`inexact_labels`), never silently wrong.

Modes (:data:`MODES`). A threshold mode is one function
``mode(val_scores, val_labels, test_scores, test_labels) -> thresholds`` (a float or one per
label) that may use only the validation arguments to choose; register one with
:func:`register_mode`. Each is scored on test and, for ranking, on dev out of sample: dev is
cut in two halves, the mode fit on one and applied to the other, both ways
(:func:`crossfit_dev`), as ``benchmarks/recipes.py`` ranks the frozen-encoder study.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

RATE = 20
SCORES = "scores.npz"
SPLITS = ("dev", "test")
METRIC_KEYS = (
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_recall_head",
    "macro_recall_medium",
    "macro_recall_tail",
)

Mode = Callable[[np.ndarray, sp.csr_matrix, np.ndarray, sp.csr_matrix], Any]
MODES: dict[str, Mode] = {}


# ------------------------------------------------------------------------------ storage
def label_floors(dev_scores: np.ndarray, dev_labels: sp.csr_matrix, rate: int = RATE) -> np.ndarray:
    """Per label, the lowest stored score: the ``rate * max(P, 1)``-th highest dev score.

    At most 0.5 (so the 0.5 cut is exact); 0 when that would keep more than half the rows.
    """
    n, n_labels = dev_scores.shape
    positives = np.asarray(dev_labels.sum(axis=0)).ravel()
    keep = rate * np.maximum(positives, 1)
    floors = np.zeros(n_labels, dtype=np.float16)
    for c in np.flatnonzero(keep <= n // 2):
        kth = np.partition(dev_scores[:, c], n - keep[c])[n - keep[c]]
        floors[c] = min(kth, np.float16(0.5))
    return floors


def _pack(scores: np.ndarray, floors: np.ndarray) -> dict[str, np.ndarray]:
    """Column-major (label by label) entries at or above the label's floor, float16 kept."""
    # exact zeros are left out too: they read back as 0 anyway
    keep_t = ((scores >= floors[None, :]) & (scores != 0)).T  # (labels, rows)
    labels, rows = np.nonzero(keep_t)
    indptr = np.zeros(scores.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(labels, minlength=scores.shape[1]), out=indptr[1:])
    rows = rows.astype(np.uint16 if scores.shape[0] < 2**16 else np.int32)
    return {"indptr": indptr, "rows": rows, "values": scores.T[keep_t]}


def write_scores(
    path: Path, dev_scores: np.ndarray, test_scores: np.ndarray, dev_labels: sp.csr_matrix
) -> dict[str, Any]:
    """Write ``scores.npz``; return a summary (floors and the share of entries kept)."""
    dev16 = np.asarray(dev_scores, dtype=np.float16)
    test16 = np.asarray(test_scores, dtype=np.float16)
    floors = label_floors(dev16, dev_labels)
    arrays: dict[str, np.ndarray] = {"floors": floors}
    kept = 0
    for split, m in (("dev", dev16), ("test", test16)):
        packed = _pack(m, floors)
        kept += packed["values"].size
        arrays[f"{split}_shape"] = np.asarray(m.shape, dtype=np.int64)
        arrays.update({f"{split}_{k}": v for k, v in packed.items()})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    total = dev16.size + test16.size
    return {
        "file": path.name,
        "dtype": "float16",
        "kept_share": round(kept / max(total, 1), 4),
        "labels_stored_whole": int((floors == 0).sum()),
        "bytes": path.stat().st_size,
    }


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dev, test, floors)``: float32 score matrices (entries below a floor are 0)."""
    with np.load(path) as z:
        floors = z["floors"].astype(np.float32)
        out = []
        for split in SPLITS:
            n_rows, n_labels = (int(v) for v in z[f"{split}_shape"])
            indptr = z[f"{split}_indptr"]
            labels = np.repeat(np.arange(n_labels), np.diff(indptr))
            dense = np.zeros((n_rows, n_labels), dtype=np.float32)
            dense[z[f"{split}_rows"].astype(np.int64), labels] = z[f"{split}_values"]
            out.append(dense)
    return out[0], out[1], floors


def inexact_labels(thresholds: Any, floors: np.ndarray) -> int:
    """Labels whose threshold falls below their floor (their counts are not exact)."""
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), floors.shape)
    return int(((floors > 0) & (t < floors)).sum())


# ------------------------------------------------------------------------------ modes
def register_mode(name: str) -> Callable[[Mode], Mode]:
    """Decorator: add a threshold mode under *name* (see the module docstring)."""

    def add(fn: Mode) -> Mode:
        MODES[name] = fn
        return fn

    return add


def _tuned(val_scores: np.ndarray, val_labels: sp.csr_matrix, **kw: Any) -> np.ndarray:
    from mlbalance.thresholds import tune_thresholds

    return np.asarray(tune_thresholds(val_labels, val_scores, **kw).thresholds)


@register_mode("0.5")
def cut_half(val_scores, val_labels, test_scores, test_labels):
    """One cut at 0.5 for every label."""
    return 0.5


@register_mode("tuned")
def tuned(val_scores, val_labels, test_scores, test_labels):
    """Per-label F1-best thresholds on val, as ``mlbalance train`` tunes them."""
    return _tuned(val_scores, val_labels)


@register_mode("smoothed")
def smoothed(val_scores, val_labels, test_scores, test_labels):
    """Tuned, pulled toward the global cut by pseudo-count 30 (``--recipe long-tail``)."""
    return _tuned(val_scores, val_labels, smoothing=30.0)


@register_mode("rare")
def rare(val_scores, val_labels, test_scores, test_labels):
    """Tuned, with the rare-label fallback (``--threshold-fallback rare``)."""
    return _tuned(val_scores, val_labels, fallback="rare")


def _tuner(val_scores: np.ndarray, val_labels: sp.csr_matrix, **kw: Any) -> np.ndarray:
    from mlbalance.thresholds import ThresholdTuner

    tuner = ThresholdTuner(random_state=0, **kw).fit(val_scores, val_labels)
    return np.asarray(tuner.thresholds_)


@register_mode("global")
def one_cut(val_scores, val_labels, test_scores, test_labels):
    """One F1-best cut on val for every label (``ThresholdTuner(per_label=False)``)."""
    return _tuner(val_scores, val_labels, per_label=False)


@register_mode("guard")
def guard(val_scores, val_labels, test_scores, test_labels):
    """Per-label cuts kept only where they beat the global cut out of fold (5-fold, by group)."""
    return _tuner(val_scores, val_labels, cv=5, guard="group")


@register_mode("temperature-guard")
def temperature_guard(val_scores, val_labels, test_scores, test_labels):
    """:func:`guard` on temperature-calibrated scores (the tuner's measured best on CPU)."""
    return _tuner(val_scores, val_labels, cv=5, guard="group", calibration="temperature")


# ------------------------------------------------------------------------------ scoring
def metrics_at(y: sp.csr_matrix, scores: np.ndarray, thresholds: Any, train_counts) -> dict:
    """The study's metrics (:data:`METRIC_KEYS`) of *scores* cut at *thresholds*."""
    from mlbalance.metrics import multilabel_metrics

    m = multilabel_metrics(y, scores, thresholds, train_counts=train_counts, per_label=False)
    return {k: m.get(k) for k in METRIC_KEYS}


def crossfit_dev(mode: Mode, scores: np.ndarray, y: sp.csr_matrix, train_counts) -> dict:
    """Dev metrics of *mode* out of sample: fit on one half of dev, score the other, both ways."""
    n = y.shape[0]
    perm = np.random.default_rng(0).permutation(n)
    halves = (np.sort(perm[: n // 2]), np.sort(perm[n // 2 :]))
    shifted = np.empty_like(scores, dtype=np.float64)
    for fit, apply in (halves, halves[::-1]):
        t = mode(scores[fit], y[fit], scores[apply], y[apply])
        shifted[apply] = scores[apply] - np.broadcast_to(np.asarray(t, np.float64), scores.shape[1])
    return metrics_at(y, shifted, 0.0, train_counts)


def score_run(
    scores_path: Path,
    dev_y: sp.csr_matrix,
    test_y: sp.csr_matrix,
    train_counts: np.ndarray,
    modes: dict[str, Mode] | None = None,
) -> dict[str, Any]:
    """Every mode of one run: test metrics, dev metrics (in sample and cross-fitted), exactness."""
    dev, test, floors = read_scores(scores_path)
    out: dict[str, Any] = {}
    for name, mode in (modes or MODES).items():
        t = mode(dev, dev_y, test, test_y)
        out[name] = {
            "test": metrics_at(test_y, test, t, train_counts),
            "dev": metrics_at(dev_y, dev, t, train_counts),
            "dev_cv": crossfit_dev(mode, dev, dev_y, train_counts),
            "inexact_labels": inexact_labels(t, floors),
        }
    return out
