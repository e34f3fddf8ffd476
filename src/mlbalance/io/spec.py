"""How labels are laid out in a table (:class:`LabelSpec`) and a loaded :class:`Dataset`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

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
        after splitting) index it from 0, as GoEmotions' ``labels.txt``.
    columns : tuple of str, optional
        One 0/1 column per label; the column names are the label names.
    prefix : str, optional
        Every column whose name starts with ``prefix`` is a 0/1 label column; the label name
        is the column name without the prefix.
    text_column : str, default "text"
        The text column (carried along; read by ``embed`` and ``train``).
    header_names : tuple of str, optional
        For CSV/TSV files without a header row: the names of their columns.
    """

    column: str = "labels"
    sep: str | None = None
    names_file: str | None = None
    columns: tuple[str, ...] | None = None
    prefix: str | None = None
    text_column: str = "text"
    header_names: tuple[str, ...] | None = None

    @property
    def is_indicator(self) -> bool:
        """True when labels are one 0/1 column per label."""
        return bool(self.columns) or self.prefix is not None

    def label_columns(self, schema_names: list[str]) -> list[str]:
        """The table columns that hold labels, given the table's column names."""
        if self.columns:
            return list(self.columns)
        if self.prefix is not None:
            return [c for c in schema_names if c.startswith(self.prefix)]
        return [self.column]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in Parquet metadata and manifests)."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelSpec:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
        }
        return cls(**kw)


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
        How the labels were read (written back with outputs).
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
