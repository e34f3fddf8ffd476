"""Samplers that draw rare-label rows more often inside a PyTorch training loop.

* :class:`RepeatFactorSampler` — LVIS repeat-factor sampling (Gupta et al. 2019) with
  stochastic rounding per epoch, ``set_epoch``, ranks, exact ``__len__``.
* :class:`ClassAwareSampler` — pick a label uniformly, then a row with it (Shen et al. 2016).
* :class:`RepeatFactorIterableDataset` — the streaming variant over Parquet shards
  (:func:`collate_rows` batches its rows).
* :func:`repeat_factors`, :func:`auto_threshold` (``threshold="auto"``),
  :func:`expected_epoch_growth`, :func:`row_weights` — the numpy side (no torch), in
  :mod:`mlbalance.samplers.factors`; :func:`repeat_exposure`, :func:`class_aware_exposure`
  in :mod:`mlbalance.samplers.exposure`.

The torch classes are imported on first use (module ``__getattr__``), so
``from mlbalance.samplers import repeat_factors`` works without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlbalance.samplers.exposure import LabelExposure, class_aware_exposure, repeat_exposure
from mlbalance.samplers.factors import (
    AUTO_GROWTH,
    auto_threshold,
    class_aware_row_probabilities,
    expected_epoch_growth,
    label_repeat_factors,
    repeat_factors,
    row_weights,
    stochastic_round,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlbalance.samplers.sampler import ClassAwareSampler, RepeatFactorSampler
    from mlbalance.samplers.streaming import RepeatFactorIterableDataset, collate_rows

__all__ = [
    "AUTO_GROWTH",
    "ClassAwareSampler",
    "LabelExposure",
    "RepeatFactorIterableDataset",
    "RepeatFactorSampler",
    "auto_threshold",
    "class_aware_exposure",
    "class_aware_row_probabilities",
    "collate_rows",
    "expected_epoch_growth",
    "label_repeat_factors",
    "repeat_exposure",
    "repeat_factors",
    "row_weights",
    "stochastic_round",
]

_LAZY = {
    "RepeatFactorSampler": "mlbalance.samplers.sampler",
    "ClassAwareSampler": "mlbalance.samplers.sampler",
    "RepeatFactorIterableDataset": "mlbalance.samplers.streaming",
    "collate_rows": "mlbalance.samplers.streaming",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
