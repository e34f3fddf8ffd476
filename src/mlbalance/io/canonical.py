"""The one label layout mlbalance writes: a ``list<string>`` column of label names.

Whatever the input layout (a list column of names or ids, a delimited string, ids with a names
file, one 0/1 column per label, MULAN ARFF), labels are parsed once when the input is read, and
every Parquet file mlbalance writes holds them as one list column of label **names**, with the
vocabulary in the file's metadata. pandas, Hugging Face ``datasets``, DuckDB or Spark see the
names; mlbalance reads the file back, with no flags, to the same :class:`LabelMatrix`.

What happens to the input's label column(s):

* one label column (a list, a delimited or JSON string, ids): replaced, in place and under the
  same name, by the list of names;
* one 0/1 column per label (``columns`` / ``prefix``): the 0/1 columns are dropped and one list
  column ``labels`` takes the place of the first (``_labels`` if a column ``labels`` is carried).

Every other column is kept untouched.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mlbalance.errors import InputError
from mlbalance.io.spec import LabelSpec
from mlbalance.labels import LabelMatrix

__all__ = [
    "LABEL_TYPE",
    "canonical_table",
    "is_canonical",
    "label_list_array",
    "output_label_column",
]

#: The Arrow type of the label column of every file mlbalance writes.
LABEL_TYPE = pa.list_(pa.string())


def label_list_array(labels: LabelMatrix) -> pa.ListArray:
    """Each row's label names as a ``list<string>`` array (vocabulary order within a row)."""
    m = labels.matrix
    names = pa.array(labels.names, type=pa.string())
    values = names.take(pa.array(np.asarray(m.indices, dtype=np.int32)))
    offsets = pa.array(np.asarray(m.indptr, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def output_label_column(spec: LabelSpec, column_names: list[str]) -> str:
    """The name of the written label column: the input's one, or ``labels`` for 0/1 columns."""
    if not spec.is_indicator:
        return spec.column
    label_cols = set(spec.label_columns(column_names))
    name = "labels"
    while name in column_names and name not in label_cols:
        name = "_" + name
    return name


def is_canonical(schema: pa.Schema, spec: LabelSpec) -> bool:
    """True when a table of *schema* in layout *spec* already holds its labels as written:
    one ``list<string>`` column of names (then it is written as it is)."""
    names = schema.names
    return (
        spec.is_canonical and spec.column in names and schema.field(spec.column).type == LABEL_TYPE
    )


def canonical_table(
    table: pa.Table, labels: LabelMatrix, spec: LabelSpec, *, relabelled: bool = False
) -> tuple[pa.Table, LabelSpec]:
    """*table* with its label column(s) replaced by one list column of names, and its spec.

    Parameters
    ----------
    table : pyarrow.Table
        Rows in the layout *spec* describes.
    labels : LabelMatrix
        The labels of these rows (as read from them, or changed by a resampler).
    spec : LabelSpec
        The layout of *table*.
    relabelled : bool
        *labels* differ from what the table's label column holds (rows a resampler
        relabelled): the column is always rebuilt. Otherwise a column that already is a
        ``list<string>`` of names is kept as it is.

    Returns
    -------
    (pyarrow.Table, LabelSpec)
        The canonical table and its spec (``LabelSpec(column=..., text_column=...)``).
    """
    if labels.n_rows != table.num_rows:  # pragma: no cover - programming error
        raise InputError(f"{labels.n_rows} label rows for a table of {table.num_rows} rows")
    names = table.column_names
    column = output_label_column(spec, names)
    out_spec = spec.canonical(column)
    drop = [c for c in spec.label_columns(names) if c in names]
    if not relabelled and is_canonical(table.schema, spec):
        return table, out_spec  # already names in a list<string> column: read back the same
    values = label_list_array(labels)
    position = min((names.index(c) for c in drop), default=len(names))
    kept = table.drop_columns(drop) if drop else table
    field = pa.field(column, LABEL_TYPE)
    return kept.add_column(min(position, kept.num_columns), field, values), out_spec
