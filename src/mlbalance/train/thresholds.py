"""Moved to :mod:`mlbalance.thresholds` (a core module, importable without torch).

Kept so that ``from mlbalance.train.thresholds import tune_thresholds`` keeps working.
"""

from mlbalance.thresholds import (
    FALLBACKS,
    MODES,
    ThresholdResult,
    ThresholdTuner,
    apply_thresholds,
    tune_thresholds,
)

__all__ = [
    "FALLBACKS",
    "MODES",
    "ThresholdResult",
    "ThresholdTuner",
    "apply_thresholds",
    "tune_thresholds",
]
