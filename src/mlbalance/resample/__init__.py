"""Resampling for imbalanced multilabel data: ML-ROS, ML-RUS, MLSMOTE, REMEDIAL, target counts.

Each algorithm is a small class with keyword-only parameters and
``fit_resample(X, Y) -> (X_res, Y_res)``; index-based ones also offer ``sample(Y)``, which
decides from the labels alone (rows are then copied by index, text included).
:mod:`mlbalance.io.shards` writes the result as Parquet shards with a manifest.
"""

from mlbalance.resample.base import BaseResampler, Resampled, imbalance_measures
from mlbalance.resample.mlros import MLROS
from mlbalance.resample.mlrus import MLRUS
from mlbalance.resample.mlsmote import MLSMOTE
from mlbalance.resample.remedial import REMEDIAL
from mlbalance.resample.target import TargetCounts

__all__ = [
    "METHODS",
    "MLROS",
    "MLRUS",
    "MLSMOTE",
    "REMEDIAL",
    "BaseResampler",
    "Resampled",
    "TargetCounts",
    "imbalance_measures",
]

#: CLI method name -> class.
METHODS: dict[str, type[BaseResampler]] = {
    "ml-ros": MLROS,
    "ml-rus": MLRUS,
    "mlsmote": MLSMOTE,
    "remedial": REMEDIAL,
    "target": TargetCounts,
}
