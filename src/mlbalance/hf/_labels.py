"""Labels of a Hugging Face ``datasets`` column, parsed once: a :class:`LabelMatrix`, multi-hot.

A label column of a :class:`datasets.Dataset` comes in one of three shapes, told apart by its
feature type (never guessed row by row):

``ids``
    ``List(ClassLabel(names=...))`` -- what :func:`mlbalance.hf.load_split` gives; the feature
    holds the vocabulary.
``names``
    ``List(Value("string"))`` -- what ``datasets.load_dataset("parquet", ...)`` gives on a
    mlbalance output; the vocabulary is the caller's, else the sorted names seen.
``multi-hot``
    a fixed-length list of 0/1 numbers per row (already encoded).

:class:`MultiHotCollator` turns any of them into the float multi-hot ``labels`` tensor a
``problem_type="multi_label_classification"`` model takes, around any data collator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix

__all__ = [
    "LabelCoding",
    "MultiHotCollator",
    "coding_of",
    "eval_coding",
    "label_matrix",
    "label_vocabulary",
    "refuse_unknown_labels",
]


def _feature(dataset: Any, column: str) -> Any:
    features = getattr(dataset, "features", None)
    if features is None or column not in features:
        cols = ", ".join(list(getattr(dataset, "column_names", []) or [])[:12])
        raise InputError(f"the dataset has no label column {column!r} (columns: {cols})")
    return features[column]


def _inner(feature: Any) -> Any:
    """The element feature of a ``List``/``Sequence`` feature, else None."""
    return getattr(feature, "feature", None)


def label_vocabulary(dataset: Any, label_column: str = "labels") -> list[str] | None:
    """The label names a ``List(ClassLabel)`` column carries, else None."""
    inner = _inner(_feature(dataset, label_column))
    names = getattr(inner, "names", None)
    return list(names) if names is not None and type(inner).__name__ == "ClassLabel" else None


@dataclass(frozen=True)
class LabelCoding:
    """How a label column is written (``kind``) and the vocabulary, in model output order.

    ``source``: the names of a ``ClassLabel`` column whose vocabulary is not ``names`` (its
    ids are read through them); ``drop_unknown``: labels outside ``names`` are left out (an
    evaluation set's labels train never saw) instead of an error.
    """

    kind: str
    names: tuple[str, ...]
    source: tuple[str, ...] | None = None
    drop_unknown: bool = False

    def encode(self, row: Any, where: str = "") -> np.ndarray:
        """One row's labels as a float32 multi-hot vector."""
        out = np.zeros(len(self.names), dtype=np.float32)
        if row is None:
            return out
        if self.kind == "multi-hot":
            arr = np.asarray(row, dtype=np.float32)
            if arr.shape != out.shape:
                raise InputError(
                    f"{where}multi-hot labels of length {arr.size}, the model has "
                    f"{len(self.names)} labels"
                )
            return arr
        values = list(row)
        if values and isinstance(values[0], str) and self.drop_unknown:
            index = self._index()
            out[[index[v] for v in values if v in index]] = 1.0
            return out
        if values and isinstance(values[0], str):
            index = self._index()
            try:
                out[[index[v] for v in values]] = 1.0
            except KeyError as exc:
                raise InputError(
                    f"{where}label {exc.args[0]!r} is not in the label vocabulary"
                ) from None
            return out
        ids = np.asarray(values, dtype=np.int64)
        n = len(self.names) if self.source is None else len(self.source)
        bad = ids[(ids < 0) | (ids >= n)]
        if bad.size:
            raise InputError(f"{where}label id {int(bad[0])} is outside the {n} labels")
        if self.source is not None:  # ids of another vocabulary: through the names
            index = self._index()
            names = [self.source[i] for i in ids.tolist()]
            if not self.drop_unknown and any(v not in index for v in names):
                unknown = next(v for v in names if v not in index)
                raise InputError(f"{where}label {unknown!r} is not in the label vocabulary")
            out[[index[v] for v in names if v in index]] = 1.0
            return out
        out[ids] = 1.0
        return out

    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {n: i for i, n in enumerate(self.names)}
            object.__setattr__(self, "_index_cache", cached)
        return cached


def coding_of(
    dataset: Any, label_column: str = "labels", label_names: Sequence[str] | None = None
) -> LabelCoding:
    """The :class:`LabelCoding` of *dataset*'s label column (read from its feature type).

    The vocabulary: *label_names* when given (a ``ClassLabel`` column must carry the same
    names), else the ``ClassLabel`` names, else the sorted names seen; a multi-hot column
    needs *label_names*.
    """
    feature = _feature(dataset, label_column)
    inner = _inner(feature)
    given = [str(n) for n in label_names] if label_names is not None else None
    if given is not None and len(set(given)) != len(given):
        raise ParameterError("label_names has duplicate names", param="label_names")
    kind_name = type(inner).__name__ if inner is not None else type(feature).__name__
    if kind_name == "ClassLabel":
        own = list(inner.names)
        if given is not None and given != own:
            raise ParameterError(
                f"label_names ({len(given)} names) differ from the {len(own)} names of the "
                f"ClassLabel column {label_column!r}",
                param="label_names",
            )
        return LabelCoding("ids", tuple(own))
    dtype = getattr(inner, "dtype", None)
    if dtype in ("string", "large_string"):
        if given is None:
            seen = {v for row in list(dataset[label_column]) for v in (row or ())}
            given = sorted(seen)
        return LabelCoding("names", tuple(given))
    if dtype is not None and (dtype.startswith(("int", "uint", "float")) or dtype == "bool"):
        if given is None:
            raise ParameterError(
                f"label column {label_column!r} holds numbers: give label_names (the names of "
                "its multi-hot positions)",
                param="label_names",
            )
        return LabelCoding("multi-hot", tuple(given))
    raise InputError(
        f"label column {label_column!r} is {feature}: expected a list of label names, a list of "
        "ClassLabel ids or a multi-hot list"
    )


def eval_coding(
    dataset: Any, label_column: str, coding: LabelCoding
) -> tuple[LabelCoding, dict[str, int], int]:
    """How to read an evaluation *dataset*'s labels into *coding*'s vocabulary (the model's),
    the labels it has beyond it, ``{name: rows}`` (left out by the returned coding), and the
    number of rows that have any of them.

    Read from the column's feature type and its distinct values (one vectorised pass over
    the label column only), not row by row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    feature = _feature(dataset, label_column)
    inner = _inner(feature)
    kind_name = type(inner).__name__ if inner is not None else type(feature).__name__
    known = set(coding.names)
    if kind_name == "ClassLabel":
        source = tuple(inner.names)
        if source == coding.names:
            return replace(coding, kind="ids", source=None, drop_unknown=True), {}, 0
        out = LabelCoding("ids", coding.names, source=source, drop_unknown=True)
        unknown_ids = [i for i, n in enumerate(source) if n not in known]
        if not unknown_ids:
            return out, {}, 0
        decode = dict(enumerate(source))
        probe: Any = pa.array(unknown_ids)
    elif getattr(inner, "dtype", None) in ("string", "large_string"):
        out = LabelCoding("names", coding.names, drop_unknown=True)
        decode = None
        probe = pa.array(sorted(known), pa.string())
    else:  # multi-hot: positions, no names to check
        return replace(coding, drop_unknown=True), {}, 0
    column = dataset.select_columns([label_column]).with_format("arrow")[:][label_column]
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat, parents = pc.list_flatten(column), pc.list_parent_indices(column)
    if decode is None:
        mask = pc.invert(pc.is_in(flat, value_set=probe))
    else:
        mask = pc.is_in(flat, value_set=probe.cast(flat.type))
    values, rows = flat.filter(mask), parents.filter(mask)
    unknown: dict[str, int] = {}
    for value in pc.unique(values).to_pylist():
        name = str(decode[value]) if decode is not None else str(value)
        unknown[name] = len(pc.unique(rows.filter(pc.equal(values, value))))
    by_rows = dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
    return out, by_rows, len(pc.unique(rows))


def refuse_unknown_labels(dataset: Any, label_column: str, coding: LabelCoding) -> None:
    """One error for train rows with labels outside the vocabulary (given ``label_names``).

    Raises
    ------
    InputError
        ``train_dataset has 1 label(s) in column 'labels' that label_names lacks: 'zz' (3 rows)``.
    """
    _, unknown, _ = eval_coding(dataset, label_column, coding)
    if unknown:
        listed = ", ".join(f"{k!r} ({v} rows)" for k, v in list(unknown.items())[:8])
        raise InputError(
            f"train_dataset has {len(unknown)} label(s) in column {label_column!r} that "
            f"label_names lacks: {listed}; add them to label_names or drop those rows"
        )


def label_matrix(
    dataset: Any,
    label_column: str = "labels",
    label_names: Sequence[str] | None = None,
    *,
    coding: LabelCoding | None = None,
) -> LabelMatrix:
    """The labels of *dataset* as a :class:`~mlbalance.labels.LabelMatrix` (see :func:`coding_of`)."""
    coding = coding or coding_of(dataset, label_column, label_names)
    rows = list(dataset[label_column])
    if coding.kind == "multi-hot":
        width = len(coding.names)
        for i, row in enumerate(rows):
            length = len(row) if row is not None else 0
            if length != width:
                raise InputError(
                    f"row {i}: multi-hot labels of length {length}, expected {width} (one per "
                    "label name)"
                )
        return LabelMatrix.from_dense(np.asarray(rows), coding.names)
    names = coding.names
    if coding.kind == "ids":
        n = len(names)
        for i, row in enumerate(rows):
            bad = [v for v in (row or ()) if not 0 <= int(v) < n]
            if bad:
                raise InputError(f"row {i}: label id {bad[0]} is outside the {n} labels")
        rows = [[names[int(v)] for v in (row or ())] for row in rows]
    return LabelMatrix.from_lists((row or () for row in rows), names)


class MultiHotCollator:
    """Wrap a data collator: each feature's label column becomes a float multi-hot row.

    The label values are taken out before *collator* sees the features (so a padding collator
    never meets a list of names) and put back as a ``(batch, labels)`` float32 tensor.
    """

    def __init__(
        self, collator: Callable[[list[dict[str, Any]]], Any], coding: LabelCoding, column: str
    ) -> None:
        self.collator = collator
        self.coding = coding
        self.column = column

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        import torch

        rows = [f.get(self.column) for f in features]
        rest = [{k: v for k, v in f.items() if k != self.column} for f in features]
        batch = self.collator(rest)
        if all(r is None for r in rows):
            return batch
        encoded = np.stack(
            [self.coding.encode(r, f"row {i} of the batch: ") for i, r in enumerate(rows)]
        )
        batch["labels"] = torch.from_numpy(encoded)
        return batch
