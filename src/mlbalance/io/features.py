"""Numeric features from a table: an embedding (list) column, or one column per feature.

MLSMOTE interpolates numeric features and an embedding head trains on them. They come in two
shapes:

* one list column of floats per row (``embedding``, from ``mlbalance embed``):
  :func:`embeddings_matrix`;
* one numeric column per feature (tabular data, MULAN ARFF): ``feature_columns=[...]`` or
  ``feature_prefix="f_"``; a MULAN ARFF file's features are its non-label attributes, and
  nominal attributes whose values are numbers (MULAN's ``{0,1}``) count as numeric.

:func:`feature_matrix` builds the float32 ``(rows, features)`` matrix from a table,
:func:`read_features` from a file; :func:`feature_table` turns new rows (MLSMOTE's synthetic
ones) back into the columns they came from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlbalance.errors import InputError, ParameterError
from mlbalance.io.spec import LabelSpec

__all__ = [
    "FeatureSpec",
    "embeddings_matrix",
    "feature_columns",
    "feature_matrix",
    "feature_table",
    "read_features",
]


@dataclass(frozen=True)
class FeatureSpec:
    """Where the numeric features of a table are: exactly one of the three.

    Parameters
    ----------
    embedding_column : str, optional
        One list column of floats per row.
    feature_columns : tuple of str, optional
        Numeric columns, one feature each, in this order.
    feature_prefix : str, optional
        Every column whose name starts with it is a numeric feature (table order).
    """

    embedding_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    feature_prefix: str | None = None

    def __post_init__(self) -> None:
        given = [
            n
            for n in ("embedding_column", "feature_columns", "feature_prefix")
            if getattr(self, n) not in (None, ())
        ]
        if len(given) > 1:
            raise ParameterError(f"give one of {', '.join(given)}, not both", param=tuple(given))

    @property
    def is_empty(self) -> bool:
        """True when no feature source is named."""
        return not (self.embedding_column or self.feature_columns or self.feature_prefix)

    def columns(self, names: Sequence[str], *, exclude: Sequence[str] = ()) -> list[str]:
        """The table columns holding the features (per-feature columns; else the embedding)."""
        if self.feature_columns:
            return list(self.feature_columns)
        if self.feature_prefix is not None:
            return [n for n in names if n.startswith(self.feature_prefix) and n not in exclude]
        if self.embedding_column:
            return [self.embedding_column]
        return [n for n in names if n not in exclude]


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def embeddings_matrix(column: pa.ChunkedArray | pa.Array, source: str, name: str) -> np.ndarray:
    """A list / fixed-size-list numeric column as an ``(n, dim)`` float32 matrix.

    Raises
    ------
    InputError
        Not a list column, a null or ragged row, empty lists, or NaN / inf values.
    ParameterError
        The column holds one number per row: per-feature columns need ``feature_columns``
        or ``feature_prefix`` instead.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if _is_numeric(arr.type):
        raise ParameterError(
            f"{source}: column {name!r} holds one number per row ({arr.type}), not a list of "
            "numbers; to use numeric columns as features give feature_columns (e.g. "
            f"{name},...) or feature_prefix",
            param=("feature_columns", "feature_prefix"),
        )
    if not _is_list(arr.type):
        raise InputError(f"{source}: column {name!r} must hold float lists, found {arr.type}")
    if not (pa.types.is_floating(arr.type.value_type) or pa.types.is_integer(arr.type.value_type)):
        raise InputError(f"{source}: column {name!r} must hold lists of numbers, found {arr.type}")
    if arr.null_count:
        row = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
        raise InputError(f"{source}: column {name!r}, row {row}: missing embedding")
    if pa.types.is_fixed_size_list(arr.type):
        dim = arr.type.list_size
    else:
        lengths = np.asarray(pc.list_value_length(arr))
        dim = int(lengths[0]) if len(lengths) else 0
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            raise InputError(
                f"{source}: column {name!r}, row {int(bad[0])}: embedding of "
                f"length {int(lengths[bad[0]])}, expected {dim}"
            )
    flat = pc.list_flatten(arr)
    if flat.null_count:
        k = int(np.flatnonzero(np.asarray(flat.is_null()))[0])
        raise InputError(f"{source}: column {name!r}, row {k // max(dim, 1)}: null value")
    values = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32)
    if dim == 0:
        raise InputError(f"{source}: column {name!r} has empty embeddings")
    out = values.reshape(len(arr), dim)
    if not out.flags.writeable:  # a zero-copy view of Arrow memory; torch wants its own
        out = out.copy()
    if not np.isfinite(out).all():
        row = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise InputError(f"{source}: column {name!r}, row {row}: embedding holds NaN or inf")
    return np.ascontiguousarray(out)


def _is_numeric(typ: pa.DataType) -> bool:
    return pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)


def _numeric_column(arr: pa.Array, source: str, name: str) -> np.ndarray:
    """One per-feature column as float64 (nominal columns with numeric values included)."""
    typ = arr.type
    if pa.types.is_dictionary(typ):
        try:
            arr = arr.cast(typ.value_type).cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{source}: feature column {name!r} is nominal with values that are not "
                "numbers; leave it out of the features"
            ) from None
    elif _is_list(typ):
        raise ParameterError(
            f"{source}: column {name!r} holds lists ({typ}); a list column is one embedding: "
            "give it as embedding_column",
            param="embedding_column",
        )
    elif not _is_numeric(typ):
        raise InputError(f"{source}: feature column {name!r} is {typ}, not numeric")
    if arr.null_count:
        row = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
        raise InputError(f"{source}: feature column {name!r}, row {row} is null")
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def feature_matrix(
    table: pa.Table,
    features: FeatureSpec,
    *,
    source: str = "",
    exclude: Sequence[str] = (),
) -> np.ndarray:
    """The float32 ``(rows, features)`` matrix of *table*'s features.

    Parameters
    ----------
    table : pyarrow.Table
        The rows.
    features : FeatureSpec
        Where the features are. With none named, every column not in *exclude* (the label
        column, for a MULAN ARFF table) is a feature.
    source : str
        The file, for messages.
    exclude : sequence of str
        Columns that are never features (labels).

    Raises
    ------
    InputError
        A column is missing, not numeric, null, NaN or infinite.
    """
    names = table.column_names
    cols = features.columns(names, exclude=exclude)
    if not cols:
        raise InputError(
            f"{source}: no columns start with feature prefix {features.feature_prefix!r}"
        )
    for c in cols:
        if c not in names:
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise InputError(f"{source}: no feature column {c!r} (columns: {shown})")
    if features.embedding_column:
        return embeddings_matrix(table.column(cols[0]), source, cols[0])
    out = np.empty((table.num_rows, len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        col = table.column(c)
        out[:, j] = _numeric_column(
            col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col, source, c
        )
    bad = ~np.isfinite(out)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        raise InputError(f"{source}: feature column {cols[j]!r}, row {r} is {out[r, j]}")
    return out


def _name_features(path: object) -> ParameterError:
    return ParameterError(
        f"{path}: name the features: embedding_column, feature_columns or feature_prefix",
        param=("embedding_column", "feature_columns", "feature_prefix"),
    )


def read_feature_columns(
    path: str | os.PathLike[str],
    features: FeatureSpec,
    *,
    spec: LabelSpec | None = None,
    format: str | None = None,
) -> pa.Table:
    """The feature column(s) of a dataset file, as stored (label columns left out).

    Parquet is read column by column (only the feature columns); other formats whole. A
    MULAN ARFF file with no feature source named gives all its features.

    Raises
    ------
    ParameterError
        No feature source named for an input that is not ARFF.
    InputError
        A named column is missing.
    """
    from mlbalance.io._parquet import parquet_files, scan, schema_of
    from mlbalance.io.readers import detect_format, read_dataset, resolve_spec

    fmt = detect_format(path, format)
    if features.is_empty and fmt != "arff":
        raise _name_features(path)
    if fmt == "parquet":
        spec, _ = resolve_spec(path, spec, None)
        files = parquet_files(path)
        names = schema_of(files[0]).names
        cols = features.columns(names, exclude=spec.label_columns(names))
        _check_present(cols, names, features, str(files[0]))
        return pa.concat_tables([t for _, t in scan(files, columns=cols)])
    data = read_dataset(path, spec, format=fmt)
    names = data.table.column_names
    cols = features.columns(names, exclude=data.spec.label_columns(names))
    _check_present(cols, names, features, str(path))
    return data.table.select(cols)


def feature_columns(
    names: Sequence[str], features: FeatureSpec, *, exclude: Sequence[str] = (), source: str = ""
) -> list[str]:
    """The columns of a table with columns *names* that hold *features*, checked present.

    With no feature source named, every column not in *exclude* (a MULAN ARFF file's
    attributes but its labels).

    Raises
    ------
    InputError
        A named column is missing, or no column starts with the feature prefix.
    """
    cols = features.columns(list(names), exclude=exclude)
    _check_present(cols, list(names), features, source)
    return cols


def _check_present(cols: list[str], names: list[str], features: FeatureSpec, source: str) -> None:
    if not cols:
        raise InputError(
            f"{source}: no columns start with feature prefix {features.feature_prefix!r}"
        )
    for c in cols:
        if c not in names:
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            hint = (
                "; add one with `mlbalance embed`, or name other features"
                if c == "embedding" and features.embedding_column
                else ""
            )
            raise InputError(f"{source}: no feature column {c!r} (columns: {shown}){hint}")


def read_features(
    path: str | os.PathLike[str],
    features: FeatureSpec,
    *,
    spec: LabelSpec | None = None,
    format: str | None = None,
) -> np.ndarray:
    """The float32 feature matrix of a dataset file (:func:`read_feature_columns`, then
    :func:`feature_matrix`)."""
    table = read_feature_columns(path, features, spec=spec, format=format)
    only = (
        features
        if features.embedding_column
        else FeatureSpec(feature_columns=tuple(table.column_names))
    )
    return feature_matrix(table, only, source=str(path))


def feature_table(values: np.ndarray, like: pa.Table, features: FeatureSpec) -> pa.Table:
    """New rows' features (MLSMOTE's synthetic rows) as the columns of *like* they came from.

    *like* holds the input's feature columns (:func:`read_feature_columns`). An embedding
    becomes one fixed-size list column; per-feature columns keep their type: integer columns
    get the value rounded, booleans ``value >= 0.5``, nominal columns with numeric values the
    nearest of their values.
    """
    if features.embedding_column:
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).ravel())
        arr = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        return pa.table({like.column_names[0]: arr})
    out = {}
    for j, name in enumerate(like.column_names):
        col = like.column(name)
        typ = col.type
        v = values[:, j].astype(np.float64)
        if pa.types.is_floating(typ):
            out[name] = pa.array(v).cast(typ)
        elif pa.types.is_integer(typ):
            out[name] = pa.array(np.rint(v).astype(np.int64)).cast(typ, safe=False)
        elif pa.types.is_boolean(typ):
            out[name] = pa.array(v >= 0.5)
        else:  # a nominal column with numeric values: the nearest value
            levels = col.combine_chunks().dictionary
            numbers = np.asarray(levels.cast(pa.float64()).to_numpy(zero_copy_only=False))
            order = np.argsort(numbers)
            pos = (
                np.clip(np.searchsorted(numbers[order], v), 1, len(order) - 1)
                if len(order) > 1
                else np.zeros(len(v), dtype=np.int64)
            )
            if len(order) > 1:
                left, right = numbers[order][pos - 1], numbers[order][pos]
                pos = np.where(np.abs(v - left) <= np.abs(right - v), pos - 1, pos)
            codes = pa.array(order[pos].astype(np.int32))
            out[name] = pa.DictionaryArray.from_arrays(codes, levels).cast(typ)
    return pa.table(out)
