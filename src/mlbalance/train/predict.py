"""``mlbalance evaluate`` and ``predict`` as library calls: a model folder on a data file.

Both load the folder with :func:`mlbalance.train.model_folder.load_predictor` (model,
thresholds, training record) and read the data in the layout the model was trained on unless
told otherwise: the text column, and for ``evaluate`` the label layout (column, separator,
label ids and the names they index) recorded in ``training_args.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance.buckets import DEFAULT_HEAD_MIN, DEFAULT_TAIL_MAX
from mlbalance.errors import InputError, ParameterError
from mlbalance.io.features import feature_matrix
from mlbalance.metrics import evaluate_scores
from mlbalance.train.data import SplitData, align_labels, load_split, read_table, text_array
from mlbalance.train.model_folder import LABEL_COUNTS, layout_spec, load_predictor
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
    pred: Predictor,
    data: str,
    spec: Any,
    header_names: Sequence[str] | None,
    text_column: str,
    encoding: str | None = None,
) -> Iterator[Any]:
    """The label layout to read *data* with: given, else stored in the file, else the model's.

    *encoding* (of a CSV/TSV/JSONL file) is never taken from the model: the training data's
    encoding says nothing about this file's, and a wrong guess would read it silently wrong.
    """
    from mlbalance.io import LabelSpec

    def encoded(s: Any) -> Any:
        if encoding is None or s is None or s.encoding is not None:
            return s
        return dataclasses.replace(s, encoding=encoding)

    if spec is not None:
        yield encoded(spec)
    elif _stored_layout(data):
        yield None
    elif pred.label_layout is not None:
        with layout_spec(
            pred.label_layout, header_names=header_names, text_column=text_column
        ) as s:
            yield encoded(s)
    elif header_names or encoding:
        header = tuple(header_names) if header_names else None
        yield LabelSpec(header_names=header, text_column=text_column, encoding=encoding)
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
    encoding: str | None = None,
    batch_size: int = 128,
    threshold: float | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
    progress: Callable[[int], None] | None = None,
    head_min: int = DEFAULT_HEAD_MIN,
    tail_max: int = DEFAULT_TAIL_MAX,
) -> dict[str, Any]:
    """Metrics of a trained model on a labelled file, at its tuned thresholds and at 0.5.

    A head on numeric features reads the columns it was trained on (recorded in the model
    folder: an embedding column, or feature columns in order); an encoder the text column.

    Parameters
    ----------
    model_dir : str or Path
        Folder written by ``mlbalance train``.
    data : str
        A labelled split (Parquet, CSV, TSV, JSONL; MULAN ARFF for a head on its features).
    spec : mlbalance.io.LabelSpec, optional
        Label layout. Default: the one stored in mlbalance Parquet, else the layout the model's
        training data was read with (recorded in the model folder).
    header_names : sequence of str, optional
        Column names of a CSV/TSV file without a header row (default: the training data's).
    text_column : str, optional
        The text column (default: the one the model was trained on).
    encoding : str, optional
        Text encoding of a CSV, TSV or JSONL file (default UTF-8, checked).
    threshold : float, optional
        One global threshold instead of the tuned ones.
    head_min, tail_max : int
        Bounds of the head/medium/tail buckets on the training counts (as ``analyse``).

    Returns
    -------
    dict
        ``model`` and ``data`` (their names, no path), ``metrics`` (at the tuned thresholds,
        or *threshold*; with the ``per_label`` rows), ``metrics_at_0.5``, ``rows``,
        ``truncated``, ``unseen_labels`` (labels of the data the model does not know, or that
        had no training row: left out of the metrics), ``train_counts_from`` (``"model"``: the
        folder's ``label_counts.json``; ``"data"``: a folder without it, bucketed by the
        evaluated data's own counts, with a warning).

    Raises
    ------
    InputError
        None of the model's labels occurs in the data (read in the wrong layout, say).
    """
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    _check_text_column(pred, text_column)
    column = text_column or pred.text_column
    if spec is not None and spec.text_column != "text":
        column = spec.text_column  # a text column given in the spec wins over the training one
    with _data_spec(pred, data, spec, header_names, column, encoding) as use, _as_data_error(pred):
        split = load_split(
            data, spec=use, vocabulary=pred.names, text_column=column, features=pred.features
        )
        y_true, extra = align_labels(split, pred.names)
        _check_some_label(split, y_true, extra, len(pred.names), use)
    dataset = pred.dataset(split.texts, split.embeddings)
    scores, truncated = pred.score(dataset, split.n_rows, batch_size=batch_size, progress=progress)
    counts, counts_from = pred.train_counts, "model"
    if not (Path(model_dir) / LABEL_COUNTS).is_file():
        counts = np.maximum(np.asarray(y_true.sum(axis=0)).ravel().astype(np.int64), 1)
        counts_from = "data"
        warnings.warn(
            f"{model_dir}: no {LABEL_COUNTS} (train label counts): the head/medium/tail "
            f"buckets use the counts of {_name(data)} instead",
            stacklevel=2,
        )
    unseen = dict(extra)
    for j in np.flatnonzero(counts == 0):
        rows = int(y_true[:, j].sum())
        if rows:
            unseen[pred.names[j]] = rows
    if unseen:
        warnings.warn(
            f"{data}: {len(unseen)} label(s) had no training row and are left out of "
            f"the metrics: {', '.join(list(unseen)[:5])}",
            stacklevel=2,
        )
    kw: dict[str, Any] = {
        "names": pred.names, "train_counts": counts, "head_min": head_min, "tail_max": tail_max,
    }  # fmt: skip
    return {
        "model": _name(model_dir),
        "data": _name(data),
        "rows": split.n_rows,
        "truncated": truncated,
        "empty_text": split.stats.get("empty_text", 0),
        "thresholds": "tuned" if threshold is None else float(threshold),
        "metrics": evaluate_scores(y_true, scores, pred.cut(threshold), **kw),
        "metrics_at_0.5": evaluate_scores(y_true, scores, 0.5, **kw),
        "unseen_labels": unseen,
        "train_counts_from": counts_from,
    }


@contextlib.contextmanager
def _as_data_error(pred: Predictor) -> Iterator[None]:
    """Feature columns of the wrong kind: the reason, and what the model reads.

    The feature readers advise which training option to use (``feature_columns`` for a column
    of numbers, ``embedding_column`` for a list column); a trained model has no such choice.
    """
    try:
        yield
    except ParameterError as exc:
        if not set(exc.params) & {"feature_columns", "feature_prefix", "embedding_column"}:
            raise
        reason = str(exc).split("; ")[0]
        raise InputError(f"{reason}; the model reads {pred.describe_inputs()}") from None


def _check_text_column(pred: Predictor, text_column: str | None) -> None:
    """Refuse a text column for a head on features: it would change nothing."""
    if text_column and pred.features is not None:
        raise ParameterError(
            f"text_column {text_column!r} is not used: the model is a head that reads "
            f"{pred.describe_inputs()}",
            param="text_column",
        )


def _name(path: str | Path) -> str:
    """A path's last component (the folder's own name for ``.``): reports hold no path."""
    return Path(path).resolve().name or str(path)


#: The columns ``predict`` adds; an input that already has one is refused (never overwritten).
ADDED_COLUMNS = ("predicted_labels", "scores")


@dataclasses.dataclass
class _Inputs:
    """The rows to predict on: every input column, and how their labels (if any) are laid out."""

    table: Any  # pyarrow.Table
    spec: Any  # the LabelSpec of the input's labels; None when it has none
    vocabulary: list[str]  # label order of the output: the data's, then the model's


def _read_inputs(
    pred: Predictor,
    data: str,
    *,
    text_column: str | None,
    header_names: Sequence[str] | None,
    encoding: str | None,
    stack: contextlib.ExitStack,
) -> _Inputs:
    """Read *data* whole; find its labels: stored (mlbalance Parquet), else in the model's
    recorded layout when its label column is there, else none."""
    from mlbalance.io import detect_format, read_dataset, resolve_spec

    fmt = detect_format(data)
    needed = [text_column] if text_column and pred.features is None else pred.input_columns
    arff = None
    if fmt == "arff":  # MULAN ARFF: its attributes, labels read with the XML file
        arff = read_dataset(data, vocabulary=pred.names)
        table = arff.table
    else:
        table = read_table(data, header_names=header_names, encoding=encoding)
        recorded = (pred.label_layout or {}).get("header_names")
        if _missing(table, needed) and header_names is None and recorded:
            header_names = recorded
            table = read_table(data, header_names=header_names, encoding=encoding)
    missing = _missing(table, needed)
    if missing:
        shown = ", ".join(table.column_names[:12]) + (" ..." if table.num_columns > 12 else "")
        raise InputError(
            f"{data}: no column {missing[0]!r} (columns: {shown}); the model reads "
            f"{pred.describe_inputs()}"
            + ("" if pred.features else "; give the text column, or the header names of a "
               "CSV/TSV without a header row")
        )  # fmt: skip
    clash = [c for c in ADDED_COLUMNS if c in table.column_names]
    if clash:
        raise InputError(
            f"{data}: has a column {clash[0]!r} already, which predict writes; rename it"
        )
    if arff is not None:
        return _Inputs(table, arff.spec, list(arff.labels.names))
    if fmt == "parquet" and _stored_layout(data):
        spec, vocabulary = resolve_spec(data, None, None)
        return _Inputs(table, spec, _union(vocabulary or [], pred.names))
    if pred.label_layout is not None:
        spec = stack.enter_context(layout_spec(pred.label_layout, header_names=header_names))
        names = table.column_names
        if spec.label_columns(names) and not _missing(table, spec.label_columns(names)):
            return _Inputs(table, spec, list(pred.names))
    return _Inputs(table, None, list(pred.names))


def _missing(table: Any, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c not in table.column_names]


def _union(first: Sequence[str], then: Sequence[str]) -> list[str]:
    seen = set(first)
    return [*first, *(n for n in then if n not in seen)]


def _unlabelled_split(pred: Predictor, table: Any, data: str, column: str) -> SplitData:
    from mlbalance.labels import LabelMatrix

    none = LabelMatrix.from_dense(np.zeros((table.num_rows, 1), dtype=np.uint8), ["_"])
    if pred.features is not None:
        with _as_data_error(pred):
            x = feature_matrix(table, pred.features, source=data)
        return SplitData(none, None, x, data)
    return SplitData(none, text_array(table.column(column), data, column), None, data)


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
    encoding: str | None = None,
) -> dict[str, Any]:
    """Write every input column plus ``predicted_labels`` and ``scores`` to a Parquet file.

    ``predicted_labels`` is a list of label names per row (score >= the label's threshold);
    ``scores`` a fixed-size list of float32 probabilities in the model's label order. The
    file is written by :func:`mlbalance.io.write_parquet`, as every file mlbalance writes:
    the label vocabulary in its metadata (the data's labels, then the model's), the input's
    label column, when it has one, as a list of label names — read in the layout stored in
    mlbalance Parquet, else in the model's recorded layout — and, when it has none,
    ``predicted_labels`` as the file's label column. The metadata's ``predictions`` entry holds
    the model folder's name (never a path), the label order of ``scores`` and the thresholds.

    Parameters
    ----------
    data : str
        Parquet, CSV, TSV or JSONL with the column(s) the model reads (a MULAN ARFF file for a
        head on its features).
    text_column : str, optional
        Overrides the text column the model was trained on.
    header_names : sequence of str, optional
        Column names of a CSV/TSV file without a header row; when not given and the file
        lacks the column the model reads, the training data's header names are tried.
    encoding : str, optional
        Text encoding of a CSV, TSV or JSONL file (default UTF-8, checked).

    Returns
    -------
    dict
        ``model``, ``data`` and ``out`` (names), ``rows``, ``truncated``,
        ``mean_labels_per_row``, ``labels_never_predicted``, ``label_column`` (the label column
        of the written file).
    """
    from mlbalance.io import check_not_input

    out = Path(out)
    check_not_input(out, [data])
    if out.is_dir():
        raise ParameterError(f"{out} is a folder; give the path of a Parquet file", param="out")
    if out.exists() and not overwrite:
        raise ParameterError(f"{out} exists; pass overwrite=True to replace it", param="overwrite")
    pred = load_predictor(model_dir, device=device, trust_remote_code=trust_remote_code)
    _check_text_column(pred, text_column)
    column = text_column or pred.text_column
    with contextlib.ExitStack() as stack:
        inputs = _read_inputs(
            pred, data, text_column=text_column, header_names=header_names, encoding=encoding,
            stack=stack,
        )  # fmt: skip
        split = _unlabelled_split(pred, inputs.table, data, column)
        dataset = pred.dataset(split.texts, split.embeddings)
        scores, truncated = pred.score(
            dataset, split.n_rows, batch_size=batch_size, progress=progress
        )
        chosen = pred.cut(threshold)
        hits = decide(scores, chosen)
        written = _write_predictions(inputs, out, pred, scores, hits, chosen, model_dir)
    never = int((~hits.any(axis=0)).sum())
    return {
        "model": _name(model_dir),
        "data": _name(data),
        "out": out.name,
        "rows": len(hits),
        "truncated": truncated,
        "mean_labels_per_row": float(hits.sum(axis=1).mean()) if len(hits) else 0.0,
        "labels_never_predicted": never,
        "label_column": written.column,
    }


def _write_predictions(
    inputs: _Inputs,
    out: Path,
    pred: Predictor,
    scores: np.ndarray,
    hits: np.ndarray,
    chosen: np.ndarray | float,
    model_dir: str | Path,
) -> Any:
    """Through :func:`mlbalance.io.write_parquet` (atomically); returns the written spec."""
    import pyarrow as pa
    import scipy.sparse as sp

    from mlbalance.io import LabelSpec, write_parquet
    from mlbalance.io.canonical import label_list_array
    from mlbalance.labels import LabelMatrix

    predicted = LabelMatrix(sp.csr_matrix(hits, dtype=np.uint8), tuple(pred.names))
    flat = pa.array(scores.reshape(-1), type=pa.float32())
    table = inputs.table.append_column("predicted_labels", label_list_array(predicted))
    table = table.append_column("scores", pa.FixedSizeListArray.from_arrays(flat, len(pred.names)))
    thresholds = float(chosen) if np.ndim(chosen) == 0 else np.asarray(chosen, float).tolist()
    meta = {"predictions": {
        "model": _name(model_dir), "labels": list(pred.names), "thresholds": thresholds,
    }}  # fmt: skip
    if inputs.spec is None:  # no labels in the input: the predicted ones are the file's labels
        spec = LabelSpec(column="predicted_labels", text_column=pred.text_column)
        return write_parquet(
            table, out, labels=inputs.vocabulary, spec=spec, rows=predicted, extra_metadata=meta
        )
    return write_parquet(
        table, out, labels=inputs.vocabulary, spec=inputs.spec, extra_metadata=meta
    )
