"""Training a transformer (or a linear head on embeddings) on imbalanced multilabel text.

Light on import: torch and transformers load only when a submodule that needs them is used.

Modules
-------
config     :class:`TrainConfig` — every option, with help text, from flags or YAML/JSON.
data       reading splits (Parquet shards, CSV, ...), on-the-fly tokenisation, dynamic padding.
model      :func:`resolve_model_path`, model building, parameter groups, freezing.
trainer    :func:`train` — the training loop (single process or DDP under torchrun).
predict    :func:`load_predictor`, :func:`predict_file`, :func:`evaluate_file`.
tiny       :func:`make_tiny_model` — a tiny random BERT and tokenizer, no downloads.
losses, thresholds
           imbalance-aware losses and per-label decision thresholds.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TrainConfig",
    "evaluate_file",
    "load_predictor",
    "make_tiny_model",
    "predict_file",
    "resolve_model_path",
    "train",
]

_LAZY = {
    "TrainConfig": "mlbalance.train.config",
    "train": "mlbalance.train.trainer",
    "load_predictor": "mlbalance.train.predict",
    "predict_file": "mlbalance.train.predict",
    "evaluate_file": "mlbalance.train.predict",
    "make_tiny_model": "mlbalance.train.tiny",
    "resolve_model_path": "mlbalance.train.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlbalance.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
