"""Turn Arrow label columns (any supported shape) into a LabelMatrix, batch by batch.

A :class:`LabelCollector` receives label batches (one per record batch), maps label values to
provisional ids in first-seen order, and at the end builds the CSR matrix with the final
vocabulary: the caller's vocabulary first, then any unseen labels sorted (numerically when every
label is an integer). Per batch the work is vectorised (Arrow compute + numpy); only the small
per-batch dictionaries are touched in Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from mlbalance.errors import InputError
from mlbalance.io._parquet import missing_column
from mlbalance.io.spec import LabelSpec
from mlbalance.labels import LabelMatrix, _canonical_csr

_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def _numpy(arr: pa.Array) -> np.ndarray:
    """A numpy view of a primitive Arrow array without nulls (a copy for booleans).

    ``Array.to_numpy`` imports pandas (about half a second of start-up for every command);
    reading the buffers directly does not.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count == 0:
        dtype = _NUMPY_TYPES.get(arr.type)
        if dtype is not None:
            dt = np.dtype(dtype)
            return np.frombuffer(
                arr.buffers()[1], dtype=dt, count=len(arr), offset=arr.offset * dt.itemsize
            )
        if pa.types.is_boolean(arr.type):
            bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
            return np.unpackbits(bits, bitorder="little")[
                arr.offset : arr.offset + len(arr)
            ].astype(bool)
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _first_null(arr: pa.Array | pa.ChunkedArray) -> int:
    return int(np.flatnonzero(_numpy(pc.is_null(arr)))[0])


class LabelCollector:
    """Accumulate label batches; :meth:`finish` returns the LabelMatrix."""

    def __init__(
        self,
        spec: LabelSpec,
        source: str,
        vocabulary: Sequence[str] | None = None,
        id_names: Sequence[str] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        self.id_names = list(id_names) if id_names is not None else None
        self._ids: dict[str, int] = {}
        if self.vocabulary is not None:
            self._ids = {n: i for i, n in enumerate(self.vocabulary)}
        self._index_parts: list[np.ndarray] = []
        self._length_parts: list[np.ndarray] = []
        self.rows = 0
        self.all_int = True
        self._sorted = True  # every row's provisional ids strictly increasing so far
        self._keep_order = False  # indicator columns: the column order is the vocabulary
        self._kind: tuple[str, str] | None = None  # ("string" | "integer", first source)

    # -- helpers ---------------------------------------------------------------------------------
    def _where(self, row: int | None = None, column: str | None = None) -> str:
        col = column if column is not None else self.spec.column
        where = f"{self.source}: column {col!r}"
        return where if row is None else f"{where}, row {row}"

    def _id_source(self) -> str:
        if self.spec.names_file:
            return f"the names file {self.spec.names_file}"
        return "the stored label vocabulary"

    def _map_names(self, names: Sequence[object]) -> np.ndarray:
        """Provisional ids of *names* (a small dictionary), adding unseen ones."""
        out = np.empty(len(names), dtype=np.int32)
        for i, name in enumerate(names):
            key = str(name)
            if not isinstance(name, (int, np.integer)) and not key.lstrip("-").isdigit():
                self.all_int = False
            got = self._ids.get(key)
            if got is None:
                got = len(self._ids)
                self._ids[key] = got
            out[i] = got
        return out

    def _names_of_ids(self, values: np.ndarray, offset_rows: np.ndarray) -> np.ndarray:
        """Map integer label ids through ``names_file`` to provisional ids."""
        assert self.id_names is not None
        bad = (values < 0) | (values >= len(self.id_names))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{self._where(int(offset_rows[k]))}: label id {int(values[k])} is outside the "
                f"{len(self.id_names)} names of {self._id_source()}"
            )
        table = self._map_names(self.id_names)
        return table[values]

    # -- batch kinds -----------------------------------------------------------------------------
    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch of the label column (list, string or integer)."""
        if isinstance(column, pa.ChunkedArray):
            if column.num_chunks == 0:
                column = pa.array([], type=column.type)
            else:
                for chunk in column.chunks:
                    self.add(chunk)
                return
        if len(column) == 0:
            return
        typ = column.type
        if column.null_count:
            raise InputError(f"{self._where(self.rows + _first_null(column))}: null label cell")
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            self._add_lists(column)
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
            self._add_strings(column)
        elif pa.types.is_dictionary(typ):
            self.add(column.cast(typ.value_type))
        elif pa.types.is_integer(typ):
            offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32))
            self._add_lists(pa.ListArray.from_arrays(offsets, column))
        else:
            raise InputError(
                f"{self._where()}: has type {typ}; expected a list of labels, a string column "
                "(one label, a JSON list, or delimited with label_sep), or integer label ids",
                param="label_sep",
            )

    def _add_strings(self, column: pa.Array) -> None:
        if self.spec.sep is not None:
            parts = pc.split_pattern(column, self.spec.sep)
            flat = pc.utf8_trim_whitespace(parts.flatten())
            lengths = _numpy(pc.list_value_length(parts))
            keep = _numpy(pc.not_equal(flat, ""))
            rows = np.repeat(np.arange(len(column)), lengths)
            lengths = np.bincount(rows[keep], minlength=len(column))
            flat = flat.filter(pa.array(keep))
            self._add_flat(flat, lengths.astype(np.int64))
            return
        first = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(column), 0, 1)
        is_json = _numpy(pc.equal(first, "["))
        if is_json.any():
            lists: list[list[object]] = []
            for i, (cell, js) in enumerate(zip(column.to_pylist(), is_json)):
                lists.append(self._parse_json_cell(cell, i) if js else ([cell] if cell else []))
            self._add_lists(pa.array(lists, type=pa.list_(pa.string())))
            return
        # one label per cell; "" is no label
        keep = _numpy(pc.not_equal(column, ""))
        self._add_flat(column.filter(pa.array(keep)), keep.astype(np.int64))

    def _parse_json_cell(self, cell: str, i: int) -> list[object]:
        try:
            value = json.loads(cell)
        except RecursionError:
            raise InputError(
                f"{self._where(self.rows + i)}: label list nested too deeply: {cell[:40]!r}..."
            ) from None
        except json.JSONDecodeError:
            try:
                import ast

                value = ast.literal_eval(cell)
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                raise InputError(
                    f"{self._where(self.rows + i)}: cannot parse label list {cell[:60]!r}"
                ) from None
        if not isinstance(value, (list, tuple)) or any(
            isinstance(v, (list, dict, tuple)) or v is None for v in value
        ):
            raise InputError(
                f"{self._where(self.rows + i)}: a label list must hold strings or ints, got "
                f"{cell[:60]!r}"
            )
        return [str(v) for v in value]

    def _add_lists(self, column: pa.Array) -> None:
        values = column.values
        offsets = _numpy(column.offsets).astype(np.int64)
        if column.offset or offsets[0] != 0 or len(values) != offsets[-1]:
            values = column.flatten()
            offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        if values.null_count:
            k = _first_null(values)
            row = int(np.searchsorted(offsets, k, side="right") - 1)
            raise InputError(f"{self._where(self.rows + row)}: null label inside a label list")
        self._add_flat(values, lengths)

    def _check_kind(self, typ: pa.DataType) -> None:
        """Refuse string labels in one file and integer labels in another (``l3`` vs ``3``)."""
        if self.id_names is not None:
            return  # integer ids and digit strings both index the names
        value = typ.value_type if pa.types.is_dictionary(typ) else typ
        kind = "integer" if pa.types.is_integer(value) else "string"
        if self._kind is None:
            self._kind = (kind, self.source)
        elif self._kind[0] != kind:
            first, where = self._kind
            raise InputError(
                f"{self._where()}: holds {kind} labels but {where} holds {first} labels; "
                "store every label the same way (all names or all integer ids)"
            )

    def _add_flat(self, values: pa.Array, lengths: np.ndarray) -> None:
        """Add flattened label values with per-row lengths."""
        typ = values.type
        self._check_kind(typ)
        if pa.types.is_dictionary(typ):
            codes = _numpy(values.indices)
            ids = self._dictionary_ids(values.dictionary, codes, lengths)
        elif pa.types.is_integer(typ):
            ints = _numpy(values).astype(np.int64)
            ids = self._int_ids(ints, lengths)
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
            enc = pc.dictionary_encode(values)
            codes = _numpy(enc.indices)
            ids = self._dictionary_ids(enc.dictionary, codes, lengths)
        else:
            raise InputError(f"{self._where()}: labels of type {typ}; expected strings or ints")
        ids = ids.astype(np.int32, copy=False)
        self._sorted = self._sorted and _rows_increasing(ids, lengths)
        self._index_parts.append(ids)
        self._length_parts.append(lengths.astype(np.int64, copy=False))
        self.rows += len(lengths)

    def _dictionary_ids(
        self, dictionary: pa.Array, codes: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        words = dictionary.to_pylist()
        if self.id_names is not None:
            try:
                as_int = np.array([int(w) for w in words], dtype=np.int64)
            except ValueError:
                bad = next(w for w in words if not str(w).strip().lstrip("-").isdigit())
                raise InputError(
                    f"{self._where()}: label {bad!r} is not an integer id, but label ids are "
                    f"mapped to names by {self._id_source()}"
                ) from None
            rows = np.repeat(np.arange(len(lengths)) + self.rows, lengths)
            return self._names_of_ids(as_int[codes], rows)
        return self._map_names(words)[codes]

    def _int_ids(self, ints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if self.id_names is not None:
            rows = np.repeat(np.arange(len(lengths)) + self.rows, lengths)
            return self._names_of_ids(ints, rows)
        uniq, inverse = np.unique(ints, return_inverse=True)
        return self._map_names([int(u) for u in uniq])[inverse]

    def add_indicator(self, table: pa.Table, columns: list[str]) -> None:
        """Add a batch of one-0/1-column-per-label data."""
        if not columns:
            raise InputError(f"{self.source}: no label columns (prefix {self.spec.prefix!r})")
        names = [c[len(self.spec.prefix) :] if self.spec.prefix else c for c in columns]
        self._keep_order = True
        col_ids = self._map_names(names)
        n = table.num_rows
        mats = []
        for name, cid in zip(columns, col_ids):
            col = table.column(name)
            if col.null_count:
                raise InputError(f"{self._where(self.rows + _first_null(col), name)}: null value")
            typ = col.type
            if not (
                pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_floating(typ)
            ):
                raise InputError(f"{self._where(None, name)}: has type {typ}; expected 0/1")
            arr = _numpy(col).astype(np.float64)
            bad = (arr != 0) & (arr != 1)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{self._where(self.rows + k, name)}: value {float(arr[k])!r} is not 0/1"
                )
            rows = np.flatnonzero(arr)
            mats.append((rows, np.full(rows.size, cid, dtype=np.int64)))
        rows = np.concatenate([m[0] for m in mats])
        cols = np.concatenate([m[1] for m in mats])
        order = np.lexsort((cols, rows))
        self._index_parts.append(cols[order].astype(np.int32))
        self._sorted = self._sorted and bool(np.all(np.diff(col_ids) > 0))
        self._length_parts.append(np.bincount(rows, minlength=n).astype(np.int64))
        self.rows += n

    # -- result ----------------------------------------------------------------------------------
    def finish(self, stats: dict[str, int] | None = None) -> LabelMatrix:
        """The LabelMatrix of everything added; fills *stats* when given."""
        provisional = list(self._ids)  # names in provisional-id order
        given = self.vocabulary or []
        if self.id_names is not None and self.vocabulary is None:
            given = [n for n in self.id_names]
        known = set(given)
        unseen = [n for n in provisional if n not in known]
        if not self._keep_order:
            unseen = sort_labels(unseen, all_int=self.all_int)
        final = list(given) + unseen
        pos = {n: i for i, n in enumerate(final)}
        remap = np.array([pos[n] for n in provisional], dtype=np.int32)
        indices = (
            np.concatenate(self._index_parts) if self._index_parts else np.zeros(0, dtype=np.int32)
        )
        self._index_parts.clear()
        lengths = (
            np.concatenate(self._length_parts)
            if self._length_parts
            else np.zeros(0, dtype=np.int64)
        )
        if remap.size and not np.array_equal(remap, np.arange(remap.size)):
            indices = remap[indices]
            sorted_rows = self._sorted and bool(np.all(np.diff(remap) > 0))
        else:
            sorted_rows = self._sorted
        itype = np.int32 if indices.size < 2**31 else np.int64
        indptr = np.zeros(lengths.size + 1, dtype=itype)
        np.cumsum(lengths, dtype=itype, out=indptr[1:])
        data = np.ones(indices.size, dtype=np.uint8)
        shape = (lengths.size, len(final))
        if sorted_rows:
            matrix = sp.csr_matrix(
                (data, indices.astype(itype, copy=False), indptr), shape=shape, copy=False
            )
        else:
            matrix = _canonical_csr(sp.csr_matrix((data, indices, indptr), shape=shape))
        if stats is not None:
            stats["duplicate_labels"] = int(indices.size - matrix.nnz)
            stats["empty_rows"] = int(np.count_nonzero(np.diff(matrix.indptr) == 0))
        return LabelMatrix(matrix, tuple(final))


def sort_labels(names: Sequence[str], *, all_int: bool = True) -> list[str]:
    """Labels in vocabulary order: numerically when every one is an integer, else by name."""
    if all_int and all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _rows_increasing(ids: np.ndarray, lengths: np.ndarray) -> bool:
    """True when the ids of every row (given by *lengths*) are strictly increasing."""
    if ids.size < 2:
        return True
    increasing = np.less(ids[:-1], ids[1:])
    starts = np.cumsum(lengths)[:-1]
    starts = starts[(starts > 0) & (starts < ids.size)]
    increasing[starts - 1] = True  # a new row may start lower
    return bool(increasing.all())


def label_columns(path: str | os.PathLike[str], spec: LabelSpec, names: list[str]) -> list[str]:
    """The label column(s) *spec* names among a table's columns *names* (all must be there)."""
    cols = spec.label_columns(names)
    if spec.is_indicator:
        if not cols:
            raise InputError(f"{path}: no columns start with label prefix {spec.prefix!r}")
        for c in cols:
            if c not in names:
                raise missing_column(path, c, names, "label_columns")
    elif spec.column not in names:
        raise missing_column(path, spec.column, names, "label_column")
    return cols


def add_table(
    collector: LabelCollector, spec: LabelSpec, table: pa.Table | pa.RecordBatch, cols: list[str]
) -> None:
    """Add the label column(s) *cols* of *table* to *collector*."""
    if spec.is_indicator:
        tab = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
        collector.add_indicator(tab, cols)
    else:
        collector.add(table.column(cols[0]))
