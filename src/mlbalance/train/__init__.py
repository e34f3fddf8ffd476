"""Training a transformer (or a head on embeddings) on imbalanced multilabel text.

Light on import: torch and transformers load only when a submodule that needs them is used.

Modules, by concern (docs/DEVELOPING.md has the map of what may import what)
---------------------------------------------------------------------------
config, options, config_file
            :class:`TrainConfig` — every option, resolved (recipes) and checked at
            construction; the choices and recipes; options from a YAML/JSON file.
data        reading splits, on-the-fly tokenisation, dynamic padding, label alignment.
model       :func:`resolve_model_path`, building the encoder or head, parameter groups.
runtime     devices, the process group, ranks, autocast (the one owner of "who am I").
weights     safe tensor files: safetensors or weights-only pickles; one-line failures.
checkpoint  :class:`TrainState` and checkpoint save/load (exact resume).
build       the parts of a run (splits, model, sampler, optimizer) from a TrainConfig.
loop        :class:`Loop` — fit / train one epoch / validate.
trainer     :func:`train` — the whole run, then thresholds and the model folder.
folds       :func:`train_folds` — k-fold training on a ``split --folds`` folder.
inference   scoring rows (shared by validation and prediction).
model_folder
            the model folder: written and read here only; :func:`load_predictor`.
predictor   :class:`Predictor` — a loaded folder that scores texts or embeddings in memory.
predict     :func:`evaluate_file`, :func:`predict_file`.
tiny        :func:`make_tiny_model` — a tiny random BERT and tokenizer, no downloads.
losses, thresholds
            imbalance-aware losses and per-label decision thresholds.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Predictor",
    "TrainConfig",
    "TrainResult",
    "evaluate_file",
    "load_predictor",
    "make_tiny_model",
    "predict_file",
    "resolve_model_path",
    "train",
    "train_folds",
]

_LAZY = {
    "TrainConfig": "mlbalance.train.config",
    "train": "mlbalance.train.trainer",
    "train_folds": "mlbalance.train.folds",
    "TrainResult": "mlbalance.train.model_folder",
    "Predictor": "mlbalance.train.predictor",
    "load_predictor": "mlbalance.train.model_folder",
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
