"""``mlbalance evaluate`` and ``predict`` as library calls: a model folder on a data file.

Both load the folder with :func:`mlbalance.train.model_folder.load_predictor` (model,
thresholds, training record) and read the data in the layout the model was trained on unless
told otherwise: the text column, and for ``evaluate`` the label layout (column, separator,
label ids and the names they index) recorded in ``training_args.json``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance.errors import InputError, ParameterError
from mlbalance.metrics import evaluate_scores
from mlbalance.train.data import SplitData, align_labels, embeddings_matrix, load_split, read_table
from mlbalance.train.model_folder import layout_spec, load_predictor
from mlbalance.train.predictor import Predictor, decide

__all__ = ["evaluate_file", "load_predictor", "predict_file"]


def _stored_layout(data: str) -> bool:
    """True when *data* is Parquet that mlbalance wrote (it carries its own label layout)."""
    from mlbalance.io import detect_format, read_metadata

    if detect_format(data) != "parquet":
        return False
    meta = read_metadata(data)
    return bool(meta and "label_spec" in meta)


@contextlib.contextmanager
def _data_spec(
    pred: Predictor, data: str, spec: Any, header_names: Sequence[str] | None, text_column: str
) -> Iterator[Any]:
    """The label layout to read *data* with: given, else stored in the file, else the model's."""
    from mlbalance.io import LabelSpec

    if spec is not None:
        yield spec
    elif _stored_layout(data):
        yield None
    elif pred.label_layout is not None:
        with layout_spec(
            pred.label_layout, header_names=header_names, text_column=text_column
        ) as s:
            yield s
    elif header_names:
        yield LabelSpec(header_names=tuple(header_names), text_column=text_column)
    else:
        yield None


def _describe(spec: Any) -> str:
    if spec is None:
        return "the layout stored in the file"
    if spec.columns or spec.prefix:
        return "0/1 label columns " + (f"with prefix {spec.prefix!r}" if spec.prefix else "")
    how = f"column {spec.column!r}"
    how += f" split on {spec.sep!r}" if spec.sep else ""
    return how + (" as ids of the model's label names" if spec.names_file else "")


def _check_some_label(
    split: SplitData, y_true: Any, extra: dict[str, int], n: int, spec: Any
) -> None:
    """Refuse data in which none of the model's labels occurs: every metric would be 0."""
    if y_true.nnz or split.n_rows == 0:
        return
    found = ", ".join(list(extra)[:5]) + (f" (+{len(extra) - 5})" if len(extra) > 5 else "")
    raise InputError(
        f"{split.source}: none of the model's {n} labels occurs in the data, read as "
        f"{_describe(spec)} ({f'labels found: {found}' if extra else 'no label found'}); "
        "give the layout the labels are written in"
    )


def evaluate_file(
    model_dir: str | Path,
    data: str,
    *,
    spec: Any = None,
    header_names: Sequence[str] | None = None,
    text_column: str | None = None,
    batch_size: int = 128,
    threshold: float | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Metrics of a trained model on a labelled file, at its tuned thresholds and at 0.5.

    Parameters
    ----------
    model_dir : str or Path
        Folder written by ``mlbalance train``.
    data : str
        A labelled split (Parquet, CSV, TSV, JSONL).
    spec : mlbalance.io.LabelSpec, optional
        Label layout. Default: the one stored in mlbalance Parquet, else the layout the model's
        training data was read with (recorded in the model folder).
    header_names : sequence of str, optional
        Column names of a CSV/TSV file without a header row (default: the training data's).
    text_column : str, optional
        The text column (default: the one the model was trained on).
    threshold : float, optional
        One global threshold instead of the tuned ones.

    Returns
    -------
    dict
        ``metrics`` (at the tuned thresholds, or *threshold*), ``metrics_at_0.5``, ``rows``,
        ``truncated``, ``unseen_labels`` (labels of the data the model does not know, or that
        had no training row: left out of the metrics).

    Raises
    ------
    InputError
        None of the model's labels occurs in the data (read in the wrong layout, say).
    """
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    column = text_column or pred.text_column
    if spec is not None and spec.text_column != "text":
        column = spec.text_column  # a text column given in the spec wins over the training one
    with _data_spec(pred, data, spec, header_names, column) as use:
        split = load_split(
            data, spec=use, vocabulary=pred.names, text_column=column,
            embedding_column=pred.embedding_column if pred.is_embedding_head else None,
        )  # fmt: skip
        y_true, extra = align_labels(split, pred.names)
        _check_some_label(split, y_true, extra, len(pred.names), use)
    dataset = pred.dataset(split.texts, split.embeddings)
    scores, truncated = pred.score(dataset, split.n_rows, batch_size=batch_size, progress=progress)
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
    kw: dict[str, Any] = {"names": pred.names, "train_counts": pred.train_counts}
    return {
        "model": str(model_dir),
        "data": str(data),
        "rows": split.n_rows,
        "truncated": truncated,
        "empty_text": split.stats.get("empty_text", 0),
        "thresholds": "tuned" if threshold is None else float(threshold),
        "metrics": evaluate_scores(y_true, scores, pred.cut(threshold), **kw),
        "metrics_at_0.5": evaluate_scores(y_true, scores, 0.5, **kw),
        "unseen_labels": unseen,
    }


def _read_inputs(pred: Predictor, data: str, column: str, header_names: Any) -> Any:
    """The table of *data*; a CSV/TSV without the column is re-read with the training header."""
    table = read_table(data, header_names=header_names)
    recorded = (pred.label_layout or {}).get("header_names")
    if column not in table.column_names and header_names is None and recorded:
        table = read_table(data, header_names=recorded)
    if column not in table.column_names:
        raise InputError(
            f"{data}: no column {column!r} (columns: {', '.join(table.column_names[:12])}); give "
            "the text column, or the header names of a CSV/TSV without a header row"
        )
    return table


def _unlabelled_split(pred: Predictor, table: Any, data: str, column: str) -> SplitData:
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlbalance.labels import LabelMatrix

    none = LabelMatrix.from_dense(np.zeros((table.num_rows, 1), dtype=np.uint8), ["_"])
    if pred.is_embedding_head:
        return SplitData(none, None, embeddings_matrix(table.column(column), data, column), data)
    texts = table.column(column)
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise InputError(f"{data}: text column {column!r} holds {texts.type}, not strings")
    return SplitData(none, pc.fill_null(texts, "").combine_chunks(), None, data)


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

    ``predicted_labels`` is a list of label names per row (score >= the label's threshold);
    ``scores`` a fixed-size list of float32 probabilities in the model's label order (stored,
    with the thresholds, in the file's metadata under ``mlbalance``).

    Parameters
    ----------
    text_column : str, optional
        Overrides the text column the model was trained on.
    header_names : sequence of str, optional
        Column names of a CSV/TSV file without a header row; when not given and the file
        lacks the text column, the training data's header names are tried.

    Returns
    -------
    dict
        ``rows``, ``out``, ``truncated``, ``mean_labels_per_row``, ``labels_never_predicted``.
    """
    import pyarrow as pa

    from mlbalance.io import check_not_input

    out = Path(out)
    check_not_input(out, [data])
    if out.exists() and not overwrite:
        raise ParameterError(f"{out} exists; pass overwrite=True to replace it", param="overwrite")
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    column = pred.embedding_column if pred.is_embedding_head else (text_column or pred.text_column)
    table = _read_inputs(pred, data, column, header_names)
    split = _unlabelled_split(pred, table, data, column)
    dataset = pred.dataset(split.texts, split.embeddings)
    scores, truncated = pred.score(dataset, split.n_rows, batch_size=batch_size, progress=progress)
    chosen = pred.cut(threshold)
    hits = decide(scores, chosen)
    names = np.asarray(pred.names, dtype=object)
    flat = pa.array(scores.reshape(-1), type=pa.float32())
    table = table.append_column(
        "predicted_labels", pa.array([names[r].tolist() for r in hits], type=pa.list_(pa.string()))
    )
    table = table.append_column("scores", pa.FixedSizeListArray.from_arrays(flat, len(names)))
    thresholds = np.asarray(chosen, dtype=float).tolist() if threshold is None else float(threshold)
    meta = {"labels": list(pred.names), "model": Path(model_dir).name, "thresholds": thresholds}
    _write_predictions(table, out, data, meta)
    never = int((~hits.any(axis=0)).sum())
    return {
        "model": str(model_dir),
        "data": str(data),
        "out": str(out),
        "rows": len(hits),
        "truncated": truncated,
        "mean_labels_per_row": float(hits.sum(axis=1).mean()) if len(hits) else 0.0,
        "labels_never_predicted": never,
    }


def _write_predictions(table: Any, out: Path, data: str, meta: dict[str, Any]) -> None:
    """Atomically; an mlbalance input keeps its label vocabulary and layout in the output."""
    import pyarrow.parquet as pq

    from mlbalance.io import LabelSpec, atomic_path, read_metadata, write_parquet

    source = read_metadata(data)
    if source and "labels" in source:
        write_parquet(
            table, out, labels=list(source["labels"]),
            spec=LabelSpec.from_dict(source.get("label_spec", {})),
            extra_metadata={"predictions": meta},
        )  # fmt: skip
        return
    table = table.replace_schema_metadata({b"mlbalance_predictions": json.dumps(meta).encode()})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
