"""Reading a fitted :class:`~mlbalance.thresholds.ThresholdTuner` back from thresholds.json."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbalance.errors import InputError, ParameterError
from mlbalance.thresholds._result import ThresholdResult

__all__ = ["tuner_from_json"]


def tuner_from_json(cls: Any, data: dict[str, Any] | str, names: Any = None) -> Any:
    """A fitted *cls* (a ThresholdTuner class) from a thresholds.json document.

    Reads this tuner's files (the settings under ``tuner``) and the trainer's version-1 files
    (the settings they recorded); *names* re-orders the thresholds to those labels.
    """
    result = ThresholdResult.from_json(data, names)
    doc = data if isinstance(data, dict) else {}
    if isinstance(data, str):
        import json

        doc = json.loads(data)
    stored = dict(doc.get("tuner") or {})
    stored.pop("scale", None)
    if not stored:  # a version-1 file: the settings it recorded
        stored = {
            "mode": result.mode,
            "target_recall": result.target_recall,
            "min_positives": result.min_positives,
            "fallback": result.strategy,
            "shrink": result.shrink,
            "smoothing": result.smoothing,
        }
    valid = set(cls._param_names())
    try:
        tuner = cls(**{k: v for k, v in stored.items() if k in valid})
    except ParameterError as exc:
        raise InputError(f"thresholds: invalid tuner settings ({exc})") from None
    tuner.result_ = result
    tuner.thresholds_ = result.thresholds.copy()
    tuner.global_threshold_ = float(result.global_threshold)
    tuner.global_thresholds_ = np.full(result.thresholds.size, result.global_threshold)
    tuner.positives_ = result.positives
    tuner.n_labels_ = int(result.thresholds.size)
    tuner.label_names_ = (
        tuple(str(n) for n in names) if names is not None else tuple(doc.get("labels", ()))
    )
    tuner.crossfit_ = result.extra.get("crossfit")
    return tuner
