"""Readers: Parquet (file or folder of shards), CSV, TSV, JSONL and MULAN ARFF.

:func:`read_labels` reads only the label column(s), in batches, and never the text: it is what
``mlbalance analyse`` runs on tens of millions of rows. :func:`read_dataset` reads every column.
:func:`iter_batches` streams a large input batch by batch with a fixed vocabulary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance.errors import InputError
from mlbalance.io._collect import LabelCollector
from mlbalance.io.spec import Dataset, LabelSpec
from mlbalance.labels import LabelMatrix

__all__ = [
    "METADATA_KEY",
    "detect_format",
    "iter_batches",
    "parquet_files",
    "read_dataset",
    "read_labels",
    "read_metadata",
    "read_table",
    "resolve_spec",
]

METADATA_KEY = b"mlbalance"
FORMATS = ("parquet", "csv", "tsv", "jsonl", "arff")
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".arff": "arff",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")


def detect_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The input format: ``format`` if given, else from the suffix (a folder is Parquet)."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
        return format
    p = Path(path)
    if p.is_dir():
        return "parquet"
    name = p.name.lower()
    for comp in _COMPRESSED:
        if name.endswith(comp):
            name = name[: -len(comp)]
    suffix = os.path.splitext(name)[1]
    if suffix not in _SUFFIXES:
        raise InputError(
            f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            f"use --format ({', '.join(FORMATS)})"
        )
    return _SUFFIXES[suffix]


def _check_exists(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.exists():
        return p
    if p.suffix.lower() == ".arff" and (
        p.with_name(f"{p.stem}-train.arff").exists() or p.with_name(f"{p.stem}-test.arff").exists()
    ):
        return p  # a MULAN set shipped as NAME-train.arff + NAME-test.arff: read_arff joins them
    raise InputError(f"{path}: no such file or folder")


def parquet_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of a file or folder (sorted by name; hidden files skipped)."""
    p = _check_exists(path)
    if p.is_file():
        return [p]
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file()
        and f.suffix in (".parquet", ".pq")
        and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)
    )
    if not files:
        raise InputError(f"{path}: folder holds no .parquet files")
    return files


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """mlbalance's metadata (vocabulary, label spec, ...) of a Parquet file or folder, if any."""
    try:
        files = parquet_files(path)
    except InputError:
        return None
    try:
        meta = pq.read_schema(files[0]).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    raw = meta.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def resolve_spec(
    path: str | os.PathLike[str], spec: LabelSpec | None, vocabulary: Sequence[str] | None
) -> tuple[LabelSpec, list[str] | None]:
    """The spec and vocabulary to use: the caller's, else those stored in the file's metadata."""
    meta = read_metadata(path) if detect_format(path) == "parquet" else None
    if spec is None:
        spec = (
            LabelSpec.from_dict(meta["label_spec"])
            if meta and "label_spec" in meta
            else LabelSpec()
        )
    if vocabulary is None and meta and "labels" in meta:
        vocabulary = list(meta["labels"])
    return spec, (list(vocabulary) if vocabulary is not None else None)


def _names_file(spec: LabelSpec) -> list[str] | None:
    if spec.names_file is None:
        return None
    p = Path(spec.names_file)
    if not p.is_file():
        raise InputError(f"{spec.names_file}: label names file not found")
    names = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise InputError(f"{spec.names_file}: needs one non-empty label name per line")
    if len(set(names)) != len(names):
        raise InputError(f"{spec.names_file}: label names repeat")
    return names


def _collector(path: Path, spec: LabelSpec, vocabulary: Sequence[str] | None) -> LabelCollector:
    return LabelCollector(spec, str(path), vocabulary, _names_file(spec))


def _missing_column(path: Path, column: str, have: Sequence[str], flag: str) -> InputError:
    shown = ", ".join(list(have)[:12]) + (" ..." if len(have) > 12 else "")
    return InputError(f"{path}: no column {column!r} (columns: {shown}); use {flag}")


def _label_columns(path: Path, spec: LabelSpec, names: list[str]) -> list[str]:
    cols = spec.label_columns(names)
    if spec.is_indicator:
        if not cols:
            raise InputError(f"{path}: no columns start with label prefix {spec.prefix!r}")
        for c in cols:
            if c not in names:
                raise _missing_column(path, c, names, "--label-columns")
    elif spec.column not in names:
        raise _missing_column(path, spec.column, names, "--label-column")
    return cols


def _add(
    collector: LabelCollector, spec: LabelSpec, table: pa.Table | pa.RecordBatch, cols: list[str]
) -> None:
    if spec.is_indicator:
        tab = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
        collector.add_indicator(tab, cols)
    else:
        collector.add(table.column(cols[0]))


# -- Parquet --------------------------------------------------------------------------------------
def _dictionary_leaves(pf: pq.ParquetFile, column: str) -> list[str]:
    """Leaf paths of a string (list) column, read as dictionaries to skip string hashing."""
    leaves = []
    for i in range(pf.metadata.num_columns):
        col = pf.schema.column(i)
        path = col.path
        if (path == column or path.startswith(column + ".")) and col.physical_type == "BYTE_ARRAY":
            leaves.append(path)
    return leaves


def _parquet_label_batches(
    path: Path, spec: LabelSpec, batch_rows: int
) -> Iterator[tuple[Path, pa.Table, list[str]]]:
    """The label column(s) of every row group of every file.

    String labels are decoded as dictionaries (no per-value hashing). Arrow cannot decode a
    nested dictionary column into one batch across row groups whose dictionaries differ, so
    this reads one row group at a time, and falls back to plain decoding if even that fails.
    """
    for f in parquet_files(path):
        try:
            plain = pq.ParquetFile(f)
            cols = _label_columns(f, spec, plain.schema_arrow.names)
            leaves = [] if spec.is_indicator else _dictionary_leaves(plain, cols[0])
            fast = pq.ParquetFile(f, read_dictionary=leaves) if leaves else plain
            for group in range(plain.num_row_groups):
                try:
                    table = fast.read_row_group(group, columns=cols)
                except pa.ArrowNotImplementedError:
                    table = plain.read_row_group(group, columns=cols)
                yield f, table, cols
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{f}: cannot read Parquet: {exc}") from None


# -- text formats ---------------------------------------------------------------------------------
def _read_text_table(
    path: Path, fmt: str, spec: LabelSpec, columns: Sequence[str] | None = None
) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    try:
        if fmt in ("csv", "tsv"):
            read = pcsv.ReadOptions(
                column_names=list(spec.header_names) if spec.header_names else None,
                block_size=1 << 24,
            )
            parse = pcsv.ParseOptions(
                delimiter="\t" if fmt == "tsv" else ",",
                quote_char=False if fmt == "tsv" else '"',
                newlines_in_values=fmt == "csv",
            )
            conv = pcsv.ConvertOptions(
                include_columns=list(columns) if columns else None, strings_can_be_null=False
            )
            if not spec.is_indicator:
                conv.column_types = {spec.column: pa.string()}
            table = pcsv.read_csv(
                path, read_options=read, parse_options=parse, convert_options=conv
            )
        else:
            table = pjson.read_json(path, read_options=pjson.ReadOptions(block_size=1 << 24))
            if columns:
                missing = [c for c in columns if c not in table.column_names]
                if missing:
                    raise _missing_column(path, missing[0], table.column_names, "--label-column")
                table = table.select(list(columns))
    except pa.ArrowInvalid as exc:
        msg = str(exc).splitlines()[0]
        if "include_columns" in msg or "No such column" in msg or "not found" in msg:
            try:
                head = _read_text_table(
                    path, fmt, LabelSpec(header_names=spec.header_names, column="\0"), None
                )
                have = head.column_names
            except InputError:
                have = []
            col = spec.column if not spec.is_indicator else (spec.columns or [""])[0]
            raise _missing_column(path, col, have, "--label-column") from None
        raise InputError(f"{path}: cannot parse {fmt.upper()}: {msg}") from None
    return table


# -- public API -----------------------------------------------------------------------------------
def read_labels(
    path: str | os.PathLike[str],
    spec: LabelSpec | None = None,
    *,
    format: str | None = None,
    vocabulary: Sequence[str] | None = None,
    batch_rows: int = 1 << 20,
    stats: dict[str, int] | None = None,
    progress: bool = False,
) -> LabelMatrix:
    """Read only the labels of a dataset.

    Parameters
    ----------
    path : path-like
        A Parquet file or folder of shards, a CSV, TSV, JSONL or ARFF file.
    spec : LabelSpec, optional
        Where and how the labels are stored. Default: the spec stored in the file's mlbalance
        metadata, else ``LabelSpec()`` (a list column named ``labels``).
    format : str, optional
        Force the format (``parquet``, ``csv``, ``tsv``, ``jsonl``, ``arff``).
    vocabulary : sequence of str, optional
        Label order to use (default: the file's stored vocabulary, else the sorted labels).
        Labels not in it are appended, sorted.
    batch_rows : int
        Rows per Parquet batch.
    stats : dict, optional
        Filled with ``duplicate_labels`` and ``empty_rows``.
    progress : bool
        Show a progress bar (Parquet).

    Returns
    -------
    LabelMatrix
    """
    p = _check_exists(path)
    fmt = detect_format(p, format)
    if fmt == "arff":
        return _read_arff(p, spec).labels
    spec, vocabulary = resolve_spec(p, spec, vocabulary)
    collector = _collector(p, spec, vocabulary)
    if fmt == "parquet":
        from mlbalance._progress import progress_bar

        total = sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(p))
        with progress_bar(
            desc="reading labels", total=total, unit="rows", enabled=None if progress else False
        ) as bar:
            for f, part, cols in _parquet_label_batches(p, spec, batch_rows):
                collector.source = str(f)
                _add(collector, spec, part, cols)
                bar.update(part.num_rows)
    else:
        table = _read_text_table(p, fmt, spec, None)
        _add(collector, spec, table, _label_columns(p, spec, table.column_names))
    return _finish(collector, p, stats)


def _finish(collector: LabelCollector, path: Path, stats: dict[str, int] | None) -> LabelMatrix:
    if collector.rows == 0:
        raise InputError(f"{path}: the dataset has no rows")
    return collector.finish(stats)


def read_table(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    header_names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Every column (or ``columns``) of a Parquet file/folder, CSV, TSV or JSONL; no labels parsed.

    For data without labels (``mlbalance predict``). CSV/TSV are read as :func:`read_dataset`
    reads them (TSV without quote processing); ``header_names`` names the columns of a file
    without a header row.
    """
    p = _check_exists(path)
    fmt = detect_format(p, format)
    if fmt == "arff":
        raise InputError(f"{path}: ARFF has no text to predict on; use Parquet, CSV, TSV or JSONL")
    if fmt == "parquet":
        tables = []
        for f in parquet_files(p):
            try:
                names = pq.read_schema(f).names
                missing = [c for c in columns or () if c not in names]
                if missing:
                    raise _missing_column(f, missing[0], names, "--text-column")
                t = pq.read_table(f, columns=list(columns) if columns else None)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{f}: cannot read Parquet: {exc}") from None
            tables.append(t.replace_schema_metadata(None))
        try:
            return pa.concat_tables(tables, promote_options="default")
        except pa.ArrowInvalid as exc:
            raise InputError(f"{p}: shards have different schemas: {exc}") from None
    spec = LabelSpec(header_names=tuple(header_names) if header_names else None, column="\0")
    table = _read_text_table(p, fmt, spec, None)
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise _missing_column(p, missing[0], table.column_names, "--text-column")
        table = table.select(list(columns))
    return table


def read_dataset(
    path: str | os.PathLike[str],
    spec: LabelSpec | None = None,
    *,
    format: str | None = None,
    vocabulary: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Dataset:
    """Read a whole dataset: every column (or ``columns`` plus the labels) and its labels.

    Parameters are those of :func:`read_labels`; ``columns`` limits the columns read (the
    label columns are always read).

    Returns
    -------
    Dataset
    """
    p = _check_exists(path)
    fmt = detect_format(p, format)
    if fmt == "arff":
        return _read_arff(p, spec)
    spec, vocabulary = resolve_spec(p, spec, vocabulary)
    collector = _collector(p, spec, vocabulary)
    stats: dict[str, int] = {}
    if fmt == "parquet":
        tables = []
        for f in parquet_files(p):
            try:
                names = pq.read_schema(f).names
                cols = _label_columns(f, spec, names)
                want = None if columns is None else list(dict.fromkeys([*columns, *cols]))
                if want:
                    missing = [c for c in want if c not in names]
                    if missing:
                        raise _missing_column(f, missing[0], names, "--text-column")
                t = pq.read_table(f, columns=want)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{f}: cannot read Parquet: {exc}") from None
            collector.source = str(f)
            _add(collector, spec, t, cols)
            tables.append(t.replace_schema_metadata(None))
        try:
            table = pa.concat_tables(tables, promote_options="default")
        except pa.ArrowInvalid as exc:
            raise InputError(f"{p}: shards have different schemas: {exc}") from None
    else:
        table = _read_text_table(p, fmt, spec, None)
        cols = _label_columns(p, spec, table.column_names)
        _add(collector, spec, table, cols)
        if columns is not None:
            table = table.select(list(dict.fromkeys([*columns, *cols])))
    labels = _finish(collector, p, stats)
    return Dataset(table=table, labels=labels, spec=spec, source=str(p), stats=stats)


def iter_batches(
    path: str | os.PathLike[str],
    spec: LabelSpec | None = None,
    *,
    batch_rows: int = 65536,
    vocabulary: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[Dataset]:
    """Stream a Parquet dataset as :class:`Dataset` batches with one fixed vocabulary.

    The vocabulary is the given one, else the stored one, else one cheap label-only pass
    decides it. Text formats are read whole and then cut into batches.
    """
    p = _check_exists(path)
    fmt = detect_format(p)
    spec, vocabulary = resolve_spec(p, spec, vocabulary)
    if vocabulary is None:
        vocabulary = list(read_labels(p, spec).names)
    if fmt != "parquet":
        ds = read_dataset(p, spec, vocabulary=vocabulary, columns=columns)
        for start in range(0, ds.n_rows, batch_rows):
            stop = min(start + batch_rows, ds.n_rows)
            yield Dataset(
                ds.table.slice(start, stop - start),
                ds.labels.take(range(start, stop)),
                spec,
                ds.source,
            )
        return
    for f in parquet_files(p):
        names = pq.read_schema(f).names
        cols = _label_columns(f, spec, names)
        want = None if columns is None else list(dict.fromkeys([*columns, *cols]))
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=want):
            collector = _collector(f, spec, vocabulary)
            _add(collector, spec, batch, cols)
            labels = collector.finish()
            if labels.n_labels != len(vocabulary):
                extra = labels.names[len(vocabulary) :]
                raise InputError(f"{f}: labels {list(extra)[:5]} are not in the vocabulary")
            yield Dataset(pa.Table.from_batches([batch]), labels, spec, str(f))


def _read_arff(path: Path, spec: LabelSpec | None) -> Dataset:
    """MULAN ARFF via :func:`mlbalance.io.arff.read_arff` (the XML label file beside it).

    The table holds the features plus the labels as a list column (``labels``, or ``_labels``
    if a feature has that name), so that whatever is written from it carries its labels.
    """
    from mlbalance.io.arff import read_arff

    features, labels = read_arff(path)
    table = (
        features
        if isinstance(features, pa.Table)
        else pa.Table.from_pandas(features, preserve_index=False)
    )
    column = "labels"
    while column in table.column_names:
        column = "_" + column
    m = labels.matrix
    values = pa.array(labels.names, type=pa.string()).take(pa.array(m.indices))
    table = table.append_column(
        column, pa.ListArray.from_arrays(pa.array(m.indptr.astype(np.int32)), values)
    )
    text = spec.text_column if spec is not None else "text"
    return Dataset(
        table=table,
        labels=labels,
        spec=LabelSpec(column=column, text_column=text),
        source=str(path),
        stats={"duplicate_labels": 0, "empty_rows": int((labels.row_sizes() == 0).sum())},
    )
