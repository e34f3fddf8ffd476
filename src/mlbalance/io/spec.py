"""How labels are laid out in a table (:class:`LabelSpec`) and a loaded :class:`Dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import pyarrow as pa

from mlbalance.errors import InputError
from mlbalance.labels import LabelMatrix

__all__ = ["Dataset", "LabelSpec"]


@dataclass(frozen=True)
class LabelSpec:
    """Where the labels are in a table, and in what shape.

    Parameters
    ----------
    column : str, default "labels"
        The label column: a list column (strings or ints), a delimited string column (see
        ``sep``), a JSON-list string column (``'["a", "b"]'``), or an integer id column.
        Ignored when ``columns`` or ``prefix`` is given.
    sep : str, optional
        Delimiter of a string label column, e.g. ``"|"`` for ``a|b`` or ``","`` for
        GoEmotions' ``3,27``. Without it, a string cell is one label unless it is a JSON list.
    names_file : str, optional
        A text file with one label name per line; integer label ids (ints, or digit strings
        after splitting) index it from 0, as GoEmotions' ``labels.txt``. Only a caller sets
        it: a spec read from a file's metadata (:meth:`from_dict`) never names a file.
    columns : tuple of str, optional
        One 0/1 column per label; the column names are the label names.
    prefix : str, optional
        Every column whose name starts with ``prefix`` is a 0/1 label column; the label name
        is the column name without the prefix.
    text_column : str, default "text"
        The text column (carried along; read by ``embed`` and ``train``).
    header_names : tuple of str, optional
        For CSV/TSV files without a header row: the names of their columns.
    encoding : str, optional
        Text encoding of a CSV, TSV or JSONL file (any Python codec name, e.g. ``latin-1``);
        default UTF-8, and a file that is not valid UTF-8 is refused with the line and byte.
    ids_index_vocabulary : bool, default False
        Integer label ids index the file's stored vocabulary. Set by :meth:`from_dict` for
        metadata written by mlbalance 0.1, which stored label ids with the *path* of a names
        file; the names file is never opened, the stored vocabulary (in names-file order)
        names the ids.
    """

    column: str = "labels"
    sep: str | None = None
    names_file: str | None = None
    columns: tuple[str, ...] | None = None
    prefix: str | None = None
    text_column: str = "text"
    header_names: tuple[str, ...] | None = None
    encoding: str | None = None
    ids_index_vocabulary: bool = False

    @property
    def is_indicator(self) -> bool:
        """True when labels are one 0/1 column per label."""
        return bool(self.columns) or self.prefix is not None

    @property
    def is_canonical(self) -> bool:
        """True for the layout mlbalance writes: one list column of label names."""
        return not (
            self.is_indicator
            or self.sep is not None
            or self.names_file
            or self.ids_index_vocabulary
        )

    def label_columns(self, schema_names: list[str]) -> list[str]:
        """The table columns that hold labels, given the table's column names."""
        if self.columns:
            return list(self.columns)
        if self.prefix is not None:
            return [c for c in schema_names if c.startswith(self.prefix)]
        return [self.column]

    def canonical(self, column: str | None = None) -> LabelSpec:
        """The spec of the same table once its labels are one list column of names."""
        return LabelSpec(column=column or self.column, text_column=self.text_column)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in Parquet metadata and manifests); defaults are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default or f.name in ("column", "text_column"):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> LabelSpec:
        """The spec stored in a file's metadata or a manifest; unknown keys are ignored.

        Stored data never makes mlbalance open a file: a stored ``names_file`` (written by
        mlbalance 0.1) is dropped and ``ids_index_vocabulary`` set instead.

        Raises
        ------
        InputError
            A key holds a value of the wrong type.
        """
        if not isinstance(data, dict):
            raise InputError(f"stored label spec must be an object, got {type(data).__name__}")
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data or data[f.name] is None or f.name == "names_file":
                continue
            value = data[f.name]
            if f.name in ("columns", "header_names"):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value
            elif f.name == "ids_index_vocabulary":
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise InputError(f"stored label spec: {f.name} has the invalid value {value!r}")
            kw[f.name] = value
        if data.get("names_file"):
            kw["ids_index_vocabulary"] = True
        return cls(**kw)

    def with_table_options(self, other: LabelSpec) -> LabelSpec:
        """This layout with *other*'s table options (text column, header names, encoding)."""
        return replace(
            self,
            text_column=other.text_column,
            header_names=other.header_names,
            encoding=other.encoding,
        )


@dataclass
class Dataset:
    """A loaded table with its labels.

    Attributes
    ----------
    table : pyarrow.Table
        Every input column, untouched (the label column(s) included).
    labels : LabelMatrix
        The labels, one row per table row.
    spec : LabelSpec
        How the labels were read.
    source : str
        The file or folder it came from (for messages).
    stats : dict
        Read statistics: ``duplicate_labels`` (repeats within a row, counted once),
        ``empty_rows`` (rows with no label).
    """

    table: pa.Table
    labels: LabelMatrix
    spec: LabelSpec
    source: str
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return self.table.num_rows
