"""Compare ways of choosing thresholds out of sample: tune on validation, score on test.

:func:`compare_modes` is what ``benchmarks/bench_thresholds.py`` runs and what a study with its
own model's scores (fine-tuned on a GPU, say) can call offline::

    from mlbalance.thresholds.compare import compare_modes, format_table
    table = compare_modes(val_scores, val_y, test_scores, test_y, train_counts=train_counts)
    print(format_table(table))
"""

from __future__ import annotations

import time
from typing import Any

from mlbalance.metrics import multilabel_metrics
from mlbalance.thresholds.tuner import ThresholdTuner

#: Named ways of choosing thresholds: ThresholdTuner settings (``None``: 0.5 for every label).
MODES: dict[str, dict[str, Any] | None] = {
    "0.5": None,
    "global": {"per_label": False},
    "per-label": {},
    "smoothed": {"smoothing": 30.0},
    "rare": {"fallback": "rare"},
    "cv-median": {"cv": 5, "average": "median"},
    "cv-mean": {"cv": 5, "average": "mean"},
    "guard-label": {"cv": 5, "guard": "label"},
    "guard-all": {"cv": 5, "guard": "all"},
    "guard": {"cv": 5, "guard": "group"},
    "guard-point": {"cv": 5, "guard": "group", "confidence": 0.5},
    "guard-tol0.005": {"cv": 5, "guard": "group", "micro_tolerance": 0.005},
    "cv-mean-guard": {"cv": 5, "average": "mean", "guard": "group"},
    "smoothed-guard": {"smoothing": 30.0, "cv": 5, "guard": "group"},
    "rare-guard": {"fallback": "rare", "cv": 5, "guard": "group"},
    "temperature-global": {"calibration": "temperature", "per_label": False},
    "temperature": {"calibration": "temperature"},
    "temperature-guard": {"calibration": "temperature", "cv": 5, "guard": "group"},
}

METRICS = ("micro_f1", "macro_f1", "macro_recall", "macro_recall_tail", "micro_precision")


def compare_modes(
    val_scores: Any,
    val_y: Any,
    test_scores: Any,
    test_y: Any,
    *,
    modes: dict[str, dict[str, Any] | None] | None = None,
    train_counts: Any = None,
    random_state: int = 0,
) -> dict[str, dict[str, Any]]:
    """Tune each mode on ``(val_scores, val_y)``, score it on ``(test_scores, test_y)``.

    Parameters
    ----------
    val_scores, test_scores : array of float, shape (n, L)
        Probabilities.
    val_y, test_y : anything :func:`mlbalance.as_label_matrix` takes
        Truth of the same rows.
    modes : dict, optional
        ``{name: ThresholdTuner parameters}`` (``None`` = 0.5 everywhere); default
        :data:`MODES`.
    train_counts : array of int, optional
        Training rows per label: gives tail recall (labels with < 20 training rows).
    random_state : int, default 0
        Seeds the folds of the modes with ``cv``.

    Returns
    -------
    dict
        Per mode: the test ``METRICS``, ``delta_micro_f1`` and ``delta_macro_f1`` against 0.5,
        ``seconds`` (tuning time), ``fallback`` (labels without their own cut) and, with ``cv``,
        ``crossfit`` (the tuner's out-of-fold estimates on validation).
    """
    modes = MODES if modes is None else modes
    out: dict[str, dict[str, Any]] = {}
    for name, params in modes.items():
        started = time.perf_counter()
        tuner = None
        if params is None:
            thresholds: Any = 0.5
        else:
            tuner = ThresholdTuner(**{"random_state": random_state, **params})
            thresholds = tuner.fit(val_scores, val_y).thresholds_
        seconds = time.perf_counter() - started
        m = multilabel_metrics(test_y, test_scores, thresholds, train_counts=train_counts,
                               per_label=False)  # fmt: skip
        row: dict[str, Any] = {k: m.get(k) for k in METRICS}
        row["seconds"] = round(seconds, 3)
        if tuner is not None:
            row["fallback"] = len(tuner.result_.fallback)
            if tuner.crossfit_ is not None:
                row["crossfit"] = tuner.crossfit_
        out[name] = row
    base = multilabel_metrics(test_y, test_scores, 0.5, per_label=False)
    for row in out.values():
        for k in ("micro_f1", "macro_f1"):
            row[f"delta_{k}"] = row[k] - base[k]
    return out


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of :func:`compare_modes` output."""

    def f(v: Any, signed: bool = False) -> str:
        if v is None:
            return "-"
        return f"{v:+.3f}" if signed else f"{v:.3f}"

    lines = [
        "| mode | micro F1 | Δ micro | macro F1 | Δ macro | macro R | tail R |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in table.items():
        lines.append(
            f"| {name} | {f(r['micro_f1'])} | {f(r.get('delta_micro_f1'), True)} | "
            f"{f(r['macro_f1'])} | {f(r.get('delta_macro_f1'), True)} | "
            f"{f(r['macro_recall'])} | {f(r['macro_recall_tail'])} |"
        )
    return "\n".join(lines)
