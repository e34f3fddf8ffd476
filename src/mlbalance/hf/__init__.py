"""Hugging Face adapters: :class:`MultilabelTrainer` (a ``transformers.Trainer`` with
mlbalance's losses, samplers, prior bias, tuned thresholds and bucket metrics) and the
``datasets`` helpers (:func:`load_split`, :func:`train_test_split`, :func:`label_matrix`).

Importing :mod:`mlbalance.hf` imports neither transformers nor datasets; each name loads them
when first used, and a missing package is one line naming ``pip install "mlbalance[hf]"``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlbalance.hf._labels import LabelCoding, MultiHotCollator, label_matrix, label_vocabulary
    from mlbalance.hf.data import load_split, train_test_split
    from mlbalance.hf.trainer import MultilabelTrainer

_WHERE = {
    "LabelCoding": "mlbalance.hf._labels",
    "MultiHotCollator": "mlbalance.hf._labels",
    "label_matrix": "mlbalance.hf._labels",
    "label_vocabulary": "mlbalance.hf._labels",
    "load_split": "mlbalance.hf.data",
    "train_test_split": "mlbalance.hf.data",
    "MultilabelTrainer": "mlbalance.hf.trainer",
}

__all__ = [
    "LabelCoding",
    "MultiHotCollator",
    "MultilabelTrainer",
    "label_matrix",
    "label_vocabulary",
    "load_split",
    "train_test_split",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlbalance.hf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
