"""mlbalance: analyse, split, resample and train on imbalanced multilabel datasets.

The core works on a :class:`LabelMatrix` (a scipy CSR 0/1 matrix plus ordered label
names); file reading and writing live in :mod:`mlbalance.io`, at the edges.
Heavy stages (``mlbalance.samplers``, ``mlbalance.train``) import torch and are not
imported here.
"""

from mlbalance._version import __version__
from mlbalance.errors import InputError, MlbalanceError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "InputError",
    "LabelMatrix",
    "MlbalanceError",
    "ParameterError",
    "__version__",
    "as_label_matrix",
]
