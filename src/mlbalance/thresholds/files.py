"""Score files for ``mlbalance thresholds``: read scores, write predictions (the I/O edge).

Scores are a Parquet file or folder with a list column (``scores`` by default, fixed-size or
variable lists of floats; a ``mlbalance predict`` output holds one, with the model's label order
in its metadata), or a 2-D ``.npy`` array. Predictions are written as Parquet: every column of a
Parquet score file plus ``predicted_labels`` (a list of label names per row), with the label
vocabulary and the thresholds in the metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance.errors import InputError


@dataclass
class Scores:
    """Scores read from a file: the matrix, the label order if the file knows it, the table."""

    values: np.ndarray
    names: list[str] | None
    table: Any  # pyarrow.Table of a Parquet file, else None
    source: str


def _prediction_names(path: str) -> list[str] | None:
    """The label order ``mlbalance predict`` (or ``thresholds apply``) stored with the scores."""
    import pyarrow.parquet as pq

    from mlbalance.io import parquet_files, read_metadata

    meta = read_metadata(path) or {}
    predictions = meta.get("predictions")
    if isinstance(predictions, dict) and predictions.get("labels"):
        return [str(n) for n in predictions["labels"]]
    raw = (pq.read_schema(parquet_files(path)[0]).metadata or {}).get(b"mlbalance_predictions")
    if raw:
        labels = json.loads(raw).get("labels")
        if labels:
            return [str(n) for n in labels]
    return None


def read_scores(path: str | Path, *, column: str = "scores") -> Scores:
    """Read a score matrix from ``.npy`` or from a Parquet list column.

    Raises
    ------
    InputError
        Naming the file, column and row of a malformed value.
    """
    path = str(path)
    if path.endswith(".npy"):
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read a .npy array ({exc})") from None
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise InputError(
                f"{path}: expected a 2-D numeric array (rows x labels), got shape "
                f"{values.shape} and dtype {values.dtype}"
            )
        return Scores(values, None, None, path)
    import pyarrow as pa

    from mlbalance.io import read_table
    from mlbalance.io._parquet import missing_column

    table = read_table(path)
    if column not in table.column_names:
        raise missing_column(path, column, table.column_names, "scores_column")
    col = table.column(column).combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
            or pa.types.is_large_list(col.type)):  # fmt: skip
        raise InputError(f"{path}: column {column!r} holds {col.type}, not lists of scores")
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{path}: column {column!r}, row {row} is null")
    lengths = np.asarray(col.value_lengths()) if not pa.types.is_fixed_size_list(col.type) else None
    width = col.type.list_size if lengths is None else (int(lengths[0]) if len(lengths) else 0)
    if lengths is not None and np.any(lengths != width):
        row = int(np.flatnonzero(lengths != width)[0])
        raise InputError(
            f"{path}: column {column!r}, row {row} has {lengths[row]} scores, row 0 has {width}"
        )
    flat = col.flatten()
    if not (pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type)):
        raise InputError(f"{path}: column {column!r} holds lists of {flat.type}, not numbers")
    values = flat.to_numpy(zero_copy_only=False).reshape(len(col), width)
    return Scores(values, _prediction_names(path), table, path)


def write_predictions(
    out: str | Path,
    scores: Scores,
    hits: np.ndarray,
    names: list[str],
    thresholds: np.ndarray,
) -> None:
    """Write ``predicted_labels`` (label names per row) beside the score file's columns."""
    import pyarrow as pa

    from mlbalance.io import LabelSpec, read_metadata, write_parquet

    name_arr = np.asarray(names, dtype=object)
    predicted = pa.array([name_arr[row].tolist() for row in hits], type=pa.list_(pa.string()))
    if scores.table is not None:
        table = scores.table
        if "predicted_labels" in table.column_names:
            table = table.drop_columns(["predicted_labels"])
    else:
        flat = pa.array(np.ascontiguousarray(scores.values, dtype=np.float32).reshape(-1))
        table = pa.table(
            {
                "row": pa.array(np.arange(hits.shape[0], dtype=np.int64)),
                "scores": pa.FixedSizeListArray.from_arrays(flat, len(names)),
            }
        )
    table = table.append_column("predicted_labels", predicted)
    info = {"labels": list(names), "thresholds": [float(t) for t in thresholds],
            "scores": Path(scores.source).name}  # fmt: skip
    source_meta = read_metadata(scores.source) if scores.table is not None else None
    if source_meta and "labels" in source_meta:  # keep the dataset's own vocabulary and layout
        write_parquet(table, out, labels=list(source_meta["labels"]),
                      spec=LabelSpec.from_dict(source_meta.get("label_spec", {})),
                      extra_metadata={"predictions": info})  # fmt: skip
    else:
        write_parquet(table, out, labels=list(names), spec=LabelSpec(column="predicted_labels"),
                      extra_metadata={"predictions": info})  # fmt: skip


def read_names(value: str) -> list[str]:
    """Label names from a file (one per line) or a comma-separated list."""
    p = Path(value)
    if p.is_file():
        return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]


def labels_for_scores(
    scores: Scores, labels_path: str, spec: Any, score_names: list[str] | None
) -> tuple[Any, list[str]]:
    """The truth of *labels_path* with its columns in the scores' label order.

    The order is *score_names*, else the one stored with the scores, else the labels file's
    own fixed order (its stored vocabulary, a names file or 0/1 label columns); without any of
    these the order of a ``.npy`` file's columns is unknown and this refuses to guess.
    """
    from mlbalance.io import read_labels, read_metadata

    names = score_names or scores.names
    if names is None:
        fixed = bool(read_metadata(labels_path)) or (
            spec is not None and (spec.names_file or spec.columns or spec.prefix)
        )
        if not fixed:
            raise InputError(
                f"{scores.source}: the scores do not say which label each column is, and the "
                f"labels of {labels_path} have no fixed order; give score_names (a file with "
                "one name per line, or a,b,c) or label_names",
                param=("score_names", "label_names"),
            )
    y = read_labels(labels_path, spec, vocabulary=names)
    if names is None:
        names = list(y.names)
    if y.n_rows != scores.values.shape[0]:
        raise InputError(
            f"{scores.source} has {scores.values.shape[0]:,} rows but {labels_path} has "
            f"{y.n_rows:,}; the rows must be the same, in the same order"
        )
    if len(names) != scores.values.shape[1]:
        raise InputError(
            f"{scores.source} has {scores.values.shape[1]} score columns for {len(names)} label "
            "names"
        )
    extra = list(y.names[len(names) :])
    if extra:
        raise InputError(
            f"{labels_path}: label(s) {extra[:5]} ({len(extra)} in all) have no score column in "
            f"{scores.source}"
        )
    return y, names
