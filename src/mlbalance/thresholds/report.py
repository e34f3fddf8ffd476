"""The summary of a tuning run: F1 at 0.5 and tuned (in-sample), the cross-fitted estimate."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbalance.metrics import multilabel_metrics
from mlbalance.thresholds.tuner import ThresholdTuner


def _f(v: Any) -> str:
    return "  -  " if v is None else f"{v:.4f}"


def tune_report(tuner: ThresholdTuner, scores: Any, y: Any, names: list[str]) -> dict[str, Any]:
    """JSON-ready facts of a fitted tuner on its tuning rows, with a ``summary`` text.

    ``in_sample``: micro/macro precision, recall and F1 at 0.5 and at the tuned thresholds on
    the rows they were tuned on (they flatter the tuned thresholds); ``crossfit``: the
    tuner's out-of-fold estimates when it has ``cv``; ``fallback``: labels by reason kind;
    ``warnings``: where a choice makes an estimate worse, with the figures.
    """
    keys = ("micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall",
            "macro_f1")  # fmt: skip
    half_t = 0.0 if tuner.logits else 0.5
    half = multilabel_metrics(y, scores, half_t, per_label=False)
    tuned = multilabel_metrics(y, scores, tuner.thresholds_, per_label=False)
    result = tuner.result_
    kinds: dict[str, int] = {}
    for kind in result.kinds.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    warnings: list[str] = []
    lines = [
        f"mlbalance thresholds tune — {tuned['n_rows']:,} rows x {len(names)} labels",
        f"  {result.summary()}",
        f"  global cut {tuner.global_threshold_:.4g}"
        + (" (on temperature-scaled scores)" if tuner.calibration else ""),
        "  on the tuning rows (in-sample: the thresholds were chosen on these rows, so the "
        "tuned figures flatter):",
        f"    {'':10} {'micro F1':>9} {'macro F1':>9}",
        f"    {'at 0.5':10} {_f(half['micro_f1']):>9} {_f(half['macro_f1']):>9}",
        f"    {'tuned':10} {_f(tuned['micro_f1']):>9} {_f(tuned['macro_f1']):>9}",
    ]
    cf = tuner.crossfit_
    if cf is None:
        lines.append("  no out-of-sample estimate: pass --cv 5 to cross-fit (and --guard group "
                     "to keep per-label cuts only where they beat the global cut out of fold)")  # fmt: skip
    else:
        oof = cf["out_of_fold"]
        lines.append(f"  out of fold ({cf['folds']}-fold cross-fit on these rows):")
        for key, label in (("at_0.5", "at 0.5"), ("global", "global"),
                           ("per_label", "per-label"), ("chosen", "chosen")):  # fmt: skip
            if key in oof:
                extra = " (optimistic: the guard chose on it)" if key == "chosen" else ""
                lines.append(f"    {label:10} {_f(oof[key]['micro_f1']):>9} "
                             f"{_f(oof[key]['macro_f1']):>9}{extra}")  # fmt: skip
        if "decisions" in cf:
            d = cf["decisions"]
            lines.append(f"  guard: {d['kept_own']} labels keep their own cut")
            lines.append(f"    ({d['decision']})")
        per, at_half = oof["per_label"], oof["at_0.5"]
        if cf["guard"] == "off" and per["micro_f1"] < at_half["micro_f1"]:
            warnings.append(
                f"out of fold, per-label cuts lower micro F1 from {at_half['micro_f1']:.4f} "
                f"(at 0.5) to {per['micro_f1']:.4f}; --guard group keeps them only where they "
                "earn their place"
            )
    if tuned["micro_f1"] < half["micro_f1"]:
        warnings.append(
            f"even in-sample the tuned thresholds lower micro F1 from {half['micro_f1']:.4f} "
            f"(at 0.5) to {tuned['micro_f1']:.4f}: they trade micro for macro F1"
        )
    lines += [f"  warning: {w}" for w in warnings]
    return {
        "summary": "\n".join(lines),
        "rows": int(tuned["n_rows"]),
        "labels": len(names),
        "in_sample": {
            "note": "tuned and scored on the same rows: flatters the tuned thresholds",
            "at_0.5": {k: half[k] for k in keys},
            "tuned": {k: tuned[k] for k in keys},
        },
        "crossfit": cf,
        "fallback": kinds,
        "global_threshold": float(tuner.global_threshold_),
        "warnings": warnings,
        "labels_own_cut": int(np.sum([r is None for r in tuner.reasons_])),
    }
