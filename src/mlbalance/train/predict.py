"""Inference: scores of a trained model, metrics on a labelled split, predictions to Parquet.

A model folder written by ``mlbalance train`` holds the model (``save_pretrained`` layout, or
``head.safetensors`` for a head on embeddings), ``thresholds.json`` (one threshold per label,
tuned on val), ``label_counts.json`` (train counts: the head/medium/tail buckets) and
``training_args.json`` (text column, max length, ...). :func:`evaluate_file` and
:func:`predict_file` use all of them.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.errors import InputError, ParameterError
from mlbalance.train.data import (
    EmbeddingBatches,
    SplitData,
    TextBatches,
    batch_indices,
    embeddings_matrix,
    load_split,
    loader,
    read_table,
)
from mlbalance.train.model import EmbeddingHead, load_model, model_label_names

__all__ = [
    "LABEL_COUNTS",
    "THRESHOLDS",
    "TRAINING_ARGS",
    "Predictor",
    "align_labels",
    "evaluate_file",
    "evaluate_scores",
    "load_predictor",
    "predict_file",
    "predict_logits",
]

THRESHOLDS = "thresholds.json"
LABEL_COUNTS = "label_counts.json"
TRAINING_ARGS = "training_args.json"
METRICS = "metrics.json"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the local CUDA device when there is one (``LOCAL_RANK``), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ParameterError(f"--device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"--device {name}: CUDA is not available on this machine")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on *device* (None = full float32)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ParameterError("--precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    skip = ("labels", "n_truncated", "index")
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in skip}


def logits_of(output: Any) -> torch.Tensor:
    """Logits from a HF model output or a plain tensor."""
    return output if isinstance(output, torch.Tensor) else output.logits


def predict_logits(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    n_rows: int,
    *,
    batch_size: int = 128,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    rank: int = 0,
    world: int = 1,
    num_workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Logits of every row (this rank's rows ``rank::world`` when *world* > 1, then gathered).

    Returns
    -------
    logits : numpy.ndarray
        ``(n_rows, n_labels)`` float32, in row order, identical on every rank.
    n_truncated : int
        Rows whose text was cut at the maximum length.
    """
    device = device or next(model.parameters()).device
    mine = np.arange(rank, n_rows, world)
    chunks: list[torch.Tensor] = []
    truncated = 0
    was_training = model.training
    model.eval()
    with (
        torch.inference_mode(),
        torch.autocast(
            device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
        ),
    ):
        for batch in loader(dataset, batch_indices(mine, batch_size), num_workers=num_workers):
            truncated += int(batch["n_truncated"])
            out = logits_of(model(**_model_inputs(batch, device)))
            chunks.append(out.float())
            if progress is not None:
                progress(len(batch["index"]))
    model.train(was_training)
    n_labels = chunks[0].shape[1] if chunks else model_n_labels(model)
    local = torch.cat(chunks) if chunks else torch.zeros((0, n_labels), device=device)
    if world == 1:
        return local.cpu().numpy(), truncated
    import torch.distributed as dist

    longest = -(-n_rows // world)
    padded = torch.zeros((longest, n_labels), dtype=torch.float32, device=local.device)
    padded[: len(local)] = local
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    count = torch.tensor([truncated], device=local.device)
    dist.all_reduce(count)
    full = np.empty((n_rows, n_labels), dtype=np.float32)
    for r, part in enumerate(gathered):
        size = len(range(r, n_rows, world))
        full[r::world] = part[:size].cpu().numpy()
    return full, int(count.item())


def model_n_labels(model: torch.nn.Module) -> int:
    """Output width of *model*."""
    module = getattr(model, "module", model)
    if isinstance(module, EmbeddingHead):
        return len(module.names)
    config: Any = getattr(module, "config")  # noqa: B009
    return int(config.num_labels)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, without overflow warnings."""
    return (0.5 * (1.0 + np.tanh(0.5 * logits.astype(np.float64)))).astype(np.float32)


def align_labels(split: SplitData, names: Sequence[str]) -> tuple[Any, dict[str, int]]:
    """The split's labels restricted to *names* (the model's), and the labels it has beyond.

    A split read with ``vocabulary=names`` carries labels the vocabulary lacks as extra columns
    after it; they are returned as ``{name: rows}`` and left out.
    """
    n = len(names)
    got = list(split.labels.names)
    if got[:n] != list(names):
        raise InputError(
            f"{split.source}: label vocabulary does not start with the model's "
            "labels (read it with the model's vocabulary)"
        )
    matrix = split.labels.matrix.tocsr()
    extra: dict[str, int] = {}
    if len(got) > n:
        counts = np.asarray(matrix[:, n:].sum(axis=0)).ravel()
        extra = {name: int(c) for name, c in zip(got[n:], counts, strict=True) if c > 0}
    return matrix[:, :n].tocsr(), extra


def evaluate_scores(
    y_true: Any,
    scores: np.ndarray,
    thresholds: np.ndarray | float,
    *,
    names: Sequence[str],
    train_counts: np.ndarray,
    per_label: bool = True,
) -> dict[str, Any]:
    """:func:`mlbalance.metrics.multilabel_metrics` on the labels train has seen.

    Labels with no training row (a vocabulary entry train lacks) have no meaningful score:
    they are left out and listed under ``labels_left_out``.
    """
    from mlbalance.metrics import multilabel_metrics

    seen = np.asarray(train_counts) > 0
    y = y_true[:, seen] if hasattr(y_true, "tocsc") else np.asarray(y_true)[:, seen]
    if hasattr(y, "toarray"):
        y = y.toarray()
    thr = thresholds if np.isscalar(thresholds) else np.asarray(thresholds)[seen]
    result = multilabel_metrics(
        np.asarray(y, dtype=np.uint8),
        scores[:, seen],
        thr,
        train_counts=np.asarray(train_counts)[seen],
        label_names=[n for n, s in zip(names, seen, strict=True) if s],
        per_label=per_label,
    )
    out = dict(result)
    left_out = [n for n, s in zip(names, seen, strict=True) if not s]
    if left_out:
        out["labels_left_out"] = left_out
    return out


def mean_loss(
    loss_fn: Callable[..., torch.Tensor], logits: np.ndarray, y_true: Any, chunk: int = 8192
) -> float:
    """The loss over all rows, computed in chunks (rows weighted equally)."""
    total, n = 0.0, logits.shape[0]
    if n == 0:
        return float("nan")
    with torch.no_grad():
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            y = y_true[start:stop]
            y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            value = loss_fn(
                torch.from_numpy(logits[start:stop]), torch.from_numpy(y.astype(np.float32))
            )
            total += float(value) * (stop - start)
    return total / n


@dataclass
class Predictor:
    """A loaded model folder: model, tokenizer, label names, thresholds, train counts."""

    directory: Path
    model: torch.nn.Module
    tokenizer: Any
    names: list[str]
    thresholds: np.ndarray
    train_counts: np.ndarray
    args: dict[str, Any]

    @property
    def is_embedding_head(self) -> bool:
        """True for a head on embeddings (no tokenizer)."""
        return isinstance(self.model, EmbeddingHead)

    def dataset(
        self,
        split_texts: Any = None,
        embeddings: np.ndarray | None = None,
        labels: Any = None,
        max_length: int | None = None,
    ) -> torch.utils.data.Dataset:
        """Batches for this model from texts or embeddings."""
        if self.is_embedding_head:
            if embeddings is None:
                raise InputError(
                    f"{self.directory}: this model is a head on embeddings; the "
                    f"data needs the column {self.embedding_column!r}"
                )
            return EmbeddingBatches(embeddings, labels)
        return TextBatches(
            split_texts, labels, self.tokenizer, max_length or int(self.args.get("max_length", 128))
        )

    @property
    def text_column(self) -> str:
        """The text column the model was trained on."""
        return str(self.args.get("text_column") or "text")

    @property
    def embedding_column(self) -> str:
        """The embedding column the head was trained on."""
        return str(self.args.get("embedding_column") or "embedding")


def read_thresholds(path: Path, names: Sequence[str]) -> np.ndarray:
    """Thresholds per label from ``thresholds.json`` (label order of *names*)."""
    from mlbalance.thresholds import ThresholdResult

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        result = ThresholdResult.from_json(data, names)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: cannot read thresholds ({exc})") from None
    return np.asarray(result.thresholds, dtype=np.float64)


def load_predictor(
    directory: str | Path, *, device: str = "auto", trust_remote_code: bool = False
) -> Predictor:
    """Load a model folder written by ``mlbalance train``.

    Parameters
    ----------
    directory : str or Path
        The ``--out`` folder of ``mlbalance train`` (or any multilabel sequence-classification
        folder; without ``thresholds.json`` the thresholds are 0.5).
    device : str, default "auto"
        Where to run.
    trust_remote_code : bool, default False
        Allow the folder's own Python code.
    """
    directory = Path(directory)
    model, tokenizer = load_model(directory, trust_remote_code=trust_remote_code)
    names = model_label_names(model)
    args: dict[str, Any] = {}
    if (directory / TRAINING_ARGS).is_file():
        args = json.loads((directory / TRAINING_ARGS).read_text(encoding="utf-8"))
    if (directory / THRESHOLDS).is_file():
        thresholds = read_thresholds(directory / THRESHOLDS, names)
    else:
        warnings.warn(f"{directory}: no {THRESHOLDS}; using 0.5 for every label", stacklevel=2)
        thresholds = np.full(len(names), 0.5)
    counts = np.ones(len(names), dtype=np.int64)
    if (directory / LABEL_COUNTS).is_file():
        data = json.loads((directory / LABEL_COUNTS).read_text(encoding="utf-8"))
        by_name = data.get("counts", {})
        counts = np.array([int(by_name.get(n, 0)) for n in names], dtype=np.int64)
    model.to(resolve_device(device))
    model.eval()
    return Predictor(directory, model, tokenizer, names, thresholds, counts, args)


def _threshold_choice(pred: Predictor, threshold: float | None) -> np.ndarray | float:
    if threshold is None:
        return pred.thresholds
    if not 0 < threshold < 1:
        raise ParameterError(f"--threshold must be in (0, 1), got {threshold}")
    return float(threshold)


def score_split(
    pred: Predictor,
    split: SplitData,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Probabilities ``(n_rows, n_labels)`` of a split, and the rows truncated."""
    dataset = pred.dataset(split.texts, split.embeddings, None)
    logits, truncated = predict_logits(
        pred.model, dataset, split.n_rows, batch_size=batch_size, progress=progress
    )
    return sigmoid(logits), truncated


def evaluate_file(
    model_dir: str | Path,
    data: str,
    *,
    spec: Any = None,
    batch_size: int = 128,
    threshold: float | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Metrics of a trained model on a labelled file, at its tuned thresholds.

    Parameters
    ----------
    model_dir : str or Path
        Folder written by ``mlbalance train``.
    data : str
        A labelled split (Parquet, CSV, TSV, JSONL).
    spec : mlbalance.io.LabelSpec, optional
        Label layout (default: stored in the Parquet metadata).
    threshold : float, optional
        One global threshold instead of the tuned ones.

    Returns
    -------
    dict
        ``metrics`` (at the tuned thresholds, or *threshold*), ``metrics_at_0.5``, ``rows``,
        ``truncated``, ``unseen_labels`` (labels of the data the model does not know, or that
        had no training row: left out of the metrics).
    """
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    text_column = pred.text_column
    if spec is not None and getattr(spec, "text_column", "text") != "text":
        text_column = spec.text_column  # --text-column given: it wins over the training one
    split = load_split(
        data,
        spec=spec,
        vocabulary=pred.names,
        text_column=text_column,
        embedding_column=pred.embedding_column if pred.is_embedding_head else None,
    )
    y_true, extra = align_labels(split, pred.names)
    scores, truncated = score_split(pred, split, batch_size=batch_size, progress=progress)
    unseen = dict(extra)
    for j in np.flatnonzero(pred.train_counts == 0):
        rows = int(y_true[:, j].sum())
        if rows:
            unseen[pred.names[j]] = rows
    if unseen:
        warnings.warn(
            f"{data}: {len(unseen)} label(s) had no training row and are left out of "
            f"the metrics: {', '.join(list(unseen)[:5])}",
            stacklevel=2,
        )
    chosen = _threshold_choice(pred, threshold)
    return {
        "model": str(model_dir),
        "data": str(data),
        "rows": split.n_rows,
        "truncated": truncated,
        "empty_text": split.stats.get("empty_text", 0),
        "thresholds": "tuned" if threshold is None else float(threshold),
        "metrics": evaluate_scores(
            y_true, scores, chosen, names=pred.names, train_counts=pred.train_counts
        ),
        "metrics_at_0.5": evaluate_scores(
            y_true, scores, 0.5, names=pred.names, train_counts=pred.train_counts
        ),
        "unseen_labels": unseen,
    }


def _float32_ceiling(thresholds: np.ndarray | float) -> np.ndarray:
    """The smallest float32 >= each threshold (so float32 comparisons match float64 ones)."""
    t64 = np.asarray(thresholds, dtype=np.float64)
    t32 = t64.astype(np.float32)
    below = t32.astype(np.float64) < t64
    return np.where(below, np.nextafter(t32, np.float32(np.inf)), t32).astype(np.float32)


def predict_file(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    *,
    batch_size: int = 128,
    threshold: float | None = None,
    overwrite: bool = False,
    device: str = "auto",
    trust_remote_code: bool = False,
    progress: Callable[[int], None] | None = None,
    text_column: str | None = None,
    header_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write every input column plus ``predicted_labels`` and ``scores`` to a Parquet file.

    ``text_column`` overrides the text column the model was trained on; ``header_names``
    names the columns of a CSV/TSV file without a header row.

    ``predicted_labels`` is a list of label names per row (score >= the label's threshold);
    ``scores`` a fixed-size list of float32 probabilities in the model's label order (stored,
    with the thresholds, in the file's metadata under ``mlbalance``).

    Returns
    -------
    dict
        ``rows``, ``out``, ``truncated``, ``mean_labels_per_row``, ``labels_never_predicted``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlbalance.io import (
        LabelSpec,
        atomic_path,
        check_not_input,
        read_metadata,
        write_parquet,
    )

    out = Path(out)
    check_not_input(out, [data])
    if out.exists() and not overwrite:
        raise ParameterError(f"{out} exists; pass --overwrite to replace it")
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    table = read_table(data, header_names=header_names)
    column = pred.embedding_column if pred.is_embedding_head else (text_column or pred.text_column)
    if column not in table.column_names:
        raise InputError(
            f"{data}: no column {column!r} (columns: {', '.join(table.column_names[:12])}); use "
            "--text-column, or --header-names for a CSV/TSV without a header row"
        )
    if pred.is_embedding_head:
        split = SplitData(
            _no_labels(table.num_rows),
            None,
            embeddings_matrix(table.column(column), data, column),
            data,
        )
    else:
        import pyarrow.compute as pc

        texts = table.column(column)
        if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
            raise InputError(f"{data}: text column {column!r} holds {texts.type}, not strings")
        split = SplitData(
            _no_labels(table.num_rows), pc.fill_null(texts, "").combine_chunks(), None, data
        )
    scores, truncated = score_split(pred, split, batch_size=batch_size, progress=progress)
    chosen = _threshold_choice(pred, threshold)
    # decide on the float32 scores as stored against the float64 thresholds of thresholds.json:
    # for a float32 s, s >= t exactly when s >= the smallest float32 not below t
    hits = scores.astype(np.float32, copy=False) >= _float32_ceiling(chosen)
    names = np.asarray(pred.names, dtype=object)
    predicted = [names[row].tolist() for row in hits]
    n_labels = len(pred.names)
    flat = pa.array(scores.reshape(-1), type=pa.float32())
    table = table.append_column("predicted_labels", pa.array(predicted, type=pa.list_(pa.string())))
    table = table.append_column("scores", pa.FixedSizeListArray.from_arrays(flat, n_labels))
    meta = {
        "labels": list(pred.names),
        "model": str(model_dir),
        "thresholds": np.asarray(chosen, dtype=float).tolist()
        if threshold is None
        else float(threshold),
    }
    source_meta = read_metadata(data)
    if source_meta and "labels" in source_meta:
        # keep the input's label vocabulary and layout, so the output still reads as a dataset
        write_parquet(
            table,
            out,
            labels=list(source_meta["labels"]),
            spec=LabelSpec.from_dict(source_meta.get("label_spec", {})),
            extra_metadata={"predictions": meta},
        )
    else:
        table = table.replace_schema_metadata({b"mlbalance_predictions": json.dumps(meta).encode()})
        with atomic_path(out) as tmp:
            pq.write_table(table, tmp)
    fired = np.asarray(hits.any(axis=0), dtype=bool)
    never = [str(pred.names[j]) for j in np.flatnonzero(~fired)]
    return {
        "model": str(model_dir),
        "data": str(data),
        "out": str(out),
        "rows": len(hits),
        "truncated": truncated,
        "mean_labels_per_row": float(hits.sum(axis=1).mean()) if len(hits) else 0.0,
        "labels_never_predicted": len(never),
    }


def _no_labels(n_rows: int) -> Any:
    from mlbalance.labels import LabelMatrix

    return LabelMatrix.from_dense(np.zeros((n_rows, 1), dtype=np.uint8), ["_"])
