"""An in-memory predictor: a loaded model folder that scores texts or embeddings.

:func:`mlbalance.train.model_folder.load_predictor` reads the folder and returns a
:class:`Predictor`; ``predict(texts)`` gives label names per text at the tuned thresholds,
``predict_proba(texts)`` the probabilities. It backs ``mlbalance evaluate`` and ``predict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from mlbalance.errors import InputError, ParameterError
from mlbalance.io.features import FeatureSpec, feature_matrix
from mlbalance.train.data import EmbeddingBatches, TextBatches
from mlbalance.train.inference import predict_logits, sigmoid
from mlbalance.train.model import EmbeddingHead
from mlbalance.train.runtime import Runtime

__all__ = ["Predictor", "decide"]


def _float32_ceiling(thresholds: np.ndarray | float) -> np.ndarray:
    """The smallest float32 >= each threshold (so float32 comparisons match float64 ones)."""
    t64 = np.asarray(thresholds, dtype=np.float64)
    t32 = t64.astype(np.float32)
    below = t32.astype(np.float64) < t64
    return np.where(below, np.nextafter(t32, np.float32(np.inf)), t32).astype(np.float32)


def decide(scores: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """``scores >= thresholds`` on float32 scores, exactly as the float64 comparison.

    For a float32 score s, ``s >= t`` exactly when s is at least the smallest float32 not
    below t; comparing with ``t`` cast to float32 would round some thresholds down.
    """
    return scores.astype(np.float32, copy=False) >= _float32_ceiling(thresholds)


@dataclass
class Predictor:
    """A loaded model folder: model, tokenizer, label names, thresholds, training record.

    ``predict(texts)`` gives label names per text at the tuned thresholds;
    ``predict_proba(texts)`` the probabilities. A head on numeric features takes an
    ``(n, dim)`` array instead of texts, or a table (pyarrow or pandas) holding the columns it
    was trained on.
    """

    directory: Path
    model: torch.nn.Module
    tokenizer: Any
    names: list[str]
    thresholds: np.ndarray
    train_counts: np.ndarray
    args: dict[str, Any]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_embedding_head(self) -> bool:
        """True for a head on numeric features: an embedding column or feature columns."""
        return isinstance(self.model, EmbeddingHead)

    @property
    def features(self) -> FeatureSpec | None:
        """Where a head's inputs are in a table, as trained (None for an encoder on text).

        The feature columns the head was trained on, in order, as recorded in the model
        folder; else its embedding column.
        """
        if not self.is_embedding_head:
            return None
        record = self.args.get("features")
        if isinstance(record, dict) and record.get("feature_columns"):
            return FeatureSpec(feature_columns=tuple(map(str, record["feature_columns"])))
        return FeatureSpec(embedding_column=self.embedding_column)

    @property
    def input_columns(self) -> list[str]:
        """The columns a head reads (its features), or the text column of an encoder."""
        features = self.features
        if features is None:
            return [self.text_column]
        return list(features.columns([]))

    def describe_inputs(self) -> str:
        """What the model reads, in words (for messages)."""
        features = self.features
        if features is None:
            return f"the text column {self.text_column!r}"
        if features.embedding_column:
            return f"the embedding column {features.embedding_column!r}"
        cols = list(features.feature_columns or ())
        shown = ", ".join(repr(c) for c in cols[:3]) + (", ..." if len(cols) > 3 else "")
        return f"{len(cols)} feature column(s) ({shown})"

    @property
    def text_column(self) -> str:
        """The text column the model was trained on."""
        return str(self.args.get("text_column") or "text")

    @property
    def embedding_column(self) -> str:
        """The embedding column the head was trained on."""
        return str(self.args.get("embedding_column") or "embedding")

    @property
    def max_length(self) -> int:
        """Tokens per text at training (texts are cut there)."""
        return int(self.args.get("max_length") or 128)

    @property
    def label_layout(self) -> dict[str, Any] | None:
        """How the training data's labels were read (None for folders before it was recorded)."""
        layout = self.args.get("label_layout")
        return layout if isinstance(layout, dict) else None

    def dataset(self, texts: Any = None, embeddings: np.ndarray | None = None) -> Any:
        """Batches for this model from texts (a pyarrow string array) or embeddings."""
        if self.is_embedding_head:
            if embeddings is None:
                raise InputError(
                    f"{self.directory}: this model is a head on numeric features; the data "
                    f"needs {self.describe_inputs()}"
                )
            dim = cast(EmbeddingHead, self.model).dim
            if embeddings.ndim != 2 or embeddings.shape[1] != dim:
                raise InputError(
                    f"{self.directory}: the head takes {dim} features per row, the data has "
                    f"{embeddings.shape[1] if embeddings.ndim == 2 else embeddings.shape}"
                )
            return EmbeddingBatches(embeddings, None)
        return TextBatches(texts, None, self.tokenizer, self.max_length)

    def score(
        self,
        dataset: Any,
        n_rows: int,
        *,
        batch_size: int = 128,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Probabilities ``(n_rows, n_labels)`` of *dataset* and the rows truncated."""
        logits, truncated = predict_logits(
            self.model, dataset, n_rows, batch_size=batch_size,
            runtime=Runtime(device=self.device), progress=progress,
        )  # fmt: skip
        return sigmoid(logits), truncated

    def _inputs(self, inputs: Any) -> tuple[Any, int]:
        if self.is_embedding_head and _is_table(inputs):
            import pyarrow as pa

            table = inputs if isinstance(inputs, pa.Table) else pa.Table.from_pandas(inputs)
            assert self.features is not None
            x = feature_matrix(table, self.features, source="inputs")
            return self.dataset(embeddings=x), len(x)
        if self.is_embedding_head:
            dim = self.model.dim
            try:
                x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
            except (TypeError, ValueError):
                x = np.zeros((0,), dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != dim:
                raise ParameterError(
                    f"inputs: this model is a head on {dim} numeric features; give an array of "
                    f"shape (n, {dim}) or a table with {self.describe_inputs()}, got "
                    f"{type(inputs).__name__} of shape {np.shape(inputs)}",
                    param="inputs",
                )
            return self.dataset(embeddings=x), len(x)
        if isinstance(inputs, str) or not isinstance(inputs, Sequence):
            raise ParameterError(
                f"inputs: give a list of texts, got {type(inputs).__name__}", param="inputs"
            )
        import pyarrow as pa

        texts = pa.array(["" if t is None else str(t) for t in inputs], type=pa.string())
        return self.dataset(texts=texts), len(texts)

    def predict_proba(self, inputs: Any, *, batch_size: int = 128) -> np.ndarray:
        """Probabilities ``(n, n_labels)`` float32, columns in the order of :attr:`names`.

        Parameters
        ----------
        inputs : list of str, array of shape (n, dim), or table
            Texts (cut at the training ``max_length``); for a head on numeric features, an
            array of them, or a pyarrow Table / pandas DataFrame with the columns it was
            trained on.
        """
        dataset, n = self._inputs(inputs)
        return self.score(dataset, n, batch_size=batch_size)[0]

    def predict(
        self, inputs: Any, *, threshold: float | None = None, batch_size: int = 128
    ) -> list[list[str]]:
        """Label names per input whose score reaches the label's tuned threshold.

        Parameters
        ----------
        inputs : list of str, or array of shape (n, dim)
            As :meth:`predict_proba`.
        threshold : float, optional
            One cut for every label instead of the tuned ones.
        """
        hits = decide(self.predict_proba(inputs, batch_size=batch_size), self.cut(threshold))
        names = np.asarray(self.names, dtype=object)
        return [names[row].tolist() for row in hits]

    def cut(self, threshold: float | None) -> np.ndarray | float:
        """The tuned thresholds, or *threshold* for every label (checked to be in (0, 1))."""
        if threshold is None:
            return self.thresholds
        if not 0 < threshold < 1:
            raise ParameterError(f"threshold must be in (0, 1), got {threshold}", param="threshold")
        return float(threshold)


def _is_table(inputs: Any) -> bool:
    """A pyarrow Table or a pandas DataFrame (not imported here unless the caller did)."""
    import sys

    import pyarrow as pa

    if isinstance(inputs, pa.Table):
        return True
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(inputs, pd.DataFrame)
