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

import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance.errors import InputError
from mlbalance.io._collect import LabelCollector, add_table, label_columns
from mlbalance.io._parquet import (
    missing_column,
    open_parquet,
    parquet_errors,
    parquet_files,
    scan,
    schema_of,
)
from mlbalance.io._text import read_text_table
from mlbalance.io.canonical import LABEL_TYPE, label_list_array
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
    "read_names_file",
    "read_table",
    "resolve_spec",
    "stored_vocabulary",
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


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """mlbalance's metadata (vocabulary, label spec, ...) of a Parquet file or folder, if any.

    The first file's is returned (every file mlbalance writes carries the same vocabulary);
    None when there is none or the file cannot be read (reading it later says why).
    """
    try:
        files = parquet_files(path)
        meta = pq.read_schema(files[0]).metadata or {}
    except (InputError, OSError, pa.ArrowException):
        return None
    raw = meta.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def stored_vocabulary(meta: dict[str, Any] | None, where: object) -> list[str] | None:
    """The label vocabulary stored in mlbalance metadata (checked: a list of distinct strings)."""
    if not meta or meta.get("labels") is None:
        return None
    names = meta["labels"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{where}: the stored label vocabulary is not a list of names")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: the stored label vocabulary repeats a name")
    return list(names)


def resolve_spec(
    path: str | os.PathLike[str], spec: LabelSpec | None, vocabulary: Sequence[str] | None
) -> tuple[LabelSpec, list[str] | None]:
    """The spec and vocabulary to use: the caller's, else those stored in the file's metadata.

    A stored spec never names a file to open (see :meth:`LabelSpec.from_dict`).
    """
    meta = read_metadata(path) if detect_format(path) == "parquet" else None
    if spec is None:
        stored = meta.get("label_spec") if meta else None
        try:
            spec = LabelSpec.from_dict(stored) if stored is not None else LabelSpec()
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    if vocabulary is None:
        vocabulary = stored_vocabulary(meta, path)
    return spec, (list(vocabulary) if vocabulary is not None else None)


def read_names_file(path: str | os.PathLike[str]) -> list[str]:
    """Label names, one per line (id = line number from 0), from a file the caller named."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: label names file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise InputError(f"{path}: needs one non-empty label name per line")
    if len(set(names)) != len(names):
        raise InputError(f"{path}: label names repeat")
    return names


def id_names(
    path: str | os.PathLike[str], spec: LabelSpec, vocabulary: Sequence[str] | None
) -> list[str] | None:
    """The names integer label ids index: the caller's names file, or for files written by
    mlbalance 0.1 (``ids_index_vocabulary``) the vocabulary stored in *path*."""
    if spec.names_file is not None:
        return read_names_file(spec.names_file)
    if not spec.ids_index_vocabulary:
        return None
    stored = (
        stored_vocabulary(read_metadata(path), path) if detect_format(path) == "parquet" else None
    )
    names = stored if stored is not None else vocabulary
    if names is None:
        raise InputError(f"{path}: label ids without a stored vocabulary to name them")
    return list(names)


def _collector(path: Path, spec: LabelSpec, vocabulary: Sequence[str] | None) -> LabelCollector:
    return LabelCollector(spec, str(path), vocabulary, id_names(path, spec, vocabulary))


def _parquet_label_columns(path: Path, spec: LabelSpec) -> tuple[list[Path], list[list[str]]]:
    """The files of *path* and the label column(s) of each."""
    files = parquet_files(path)
    return files, [label_columns(f, spec, schema_of(f).names) for f in files]


def _concat(parts: list[tuple[Path, pa.Table]], path: Path) -> pa.Table:
    """Concatenate per-file tables; shards whose schemas disagree are named."""
    try:
        return pa.concat_tables([t for _, t in parts], promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    (first, base), *rest = parts
    for f, t in rest:
        for field in t.schema:
            i = base.schema.get_field_index(field.name)
            if i >= 0 and base.schema.field(i).type != field.type:
                raise InputError(
                    f"{f}: column {field.name!r} is {field.type} but {first} has "
                    f"{base.schema.field(i).type}; shards of one dataset need one schema"
                )
    raise InputError(f"{path}: the shards have different schemas")  # pragma: no cover


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
        Unused (Parquet is read one row group at a time); kept for compatibility.
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
        return _read_arff(p, spec, vocabulary).labels
    spec, vocabulary = resolve_spec(p, spec, vocabulary)
    collector = _collector(p, spec, vocabulary)
    if fmt == "parquet":
        from mlbalance._progress import progress_bar

        files, cols = _parquet_label_columns(p, spec)
        total = 0
        for f in files:
            with parquet_errors(f):
                total += open_parquet(f).metadata.num_rows
        with progress_bar(
            desc="reading labels", total=total, unit="rows", enabled=None if progress else False
        ) as bar:
            for f, c in zip(files, cols):
                collector.source = str(f)
                dictionary = () if spec.is_indicator else c
                for _, part in scan([f], columns=c, dictionary=dictionary):
                    add_table(collector, spec, part, c)
                    bar.update(part.num_rows)
    else:
        table = read_text_table(p, fmt, spec)
        add_table(collector, spec, table, label_columns(p, spec, table.column_names))
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
    encoding: str | None = None,
) -> pa.Table:
    """Every column (or ``columns``) of a Parquet file/folder, CSV, TSV or JSONL; no labels parsed.

    For data without labels (``mlbalance predict``). CSV/TSV are read as :func:`read_dataset`
    reads them (TSV without quote processing); ``header_names`` names the columns of a file
    without a header row; ``encoding`` is the text encoding of a CSV/TSV/JSONL file.
    """
    p = _check_exists(path)
    fmt = detect_format(p, format)
    if fmt == "arff":
        raise InputError(f"{path}: ARFF has no text to predict on; use Parquet, CSV, TSV or JSONL")
    if fmt == "parquet":
        want = list(columns) if columns else None
        return _concat(list(_whole_files(p, want, "text_column")), p)
    spec = LabelSpec(
        header_names=tuple(header_names) if header_names else None, column="\0", encoding=encoding
    )
    table = read_text_table(p, fmt, spec)
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise missing_column(p, missing[0], table.column_names, "text_column")
        table = table.select(list(columns))
    return table


def _whole_files(
    path: Path, columns: list[str] | None, param: str
) -> Iterator[tuple[Path, pa.Table]]:
    """Each Parquet file of *path* read whole (pyarrow's threaded reader), metadata dropped."""
    for f in parquet_files(path):
        with parquet_errors(f):
            names = schema_of(f).names
            missing = [c for c in columns or () if c not in names]
            if missing:
                raise missing_column(f, missing[0], names, param)
            yield f, pq.read_table(f, columns=columns).replace_schema_metadata(None)


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
        return _read_arff(p, spec, vocabulary)
    spec, vocabulary = resolve_spec(p, spec, vocabulary)
    collector = _collector(p, spec, vocabulary)
    stats: dict[str, int] = {}
    if fmt == "parquet":
        files, label_cols = _parquet_label_columns(p, spec)
        parts = []
        for f, cols in zip(files, label_cols):
            want = None if columns is None else list(dict.fromkeys([*columns, *cols]))
            _, t = next(_whole_files(f, want, "text_column"))
            collector.source = str(f)
            add_table(collector, spec, t, cols)
            parts.append((f, t))
        table = _concat(parts, p)
    else:
        table = read_text_table(p, fmt, spec)
        cols = label_columns(p, spec, table.column_names)
        add_table(collector, spec, table, cols)
        if columns is not None:
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise missing_column(p, missing[0], table.column_names, "text_column")
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
    names = id_names(p, spec, vocabulary)
    files, label_cols = _parquet_label_columns(p, spec)
    for f, cols in zip(files, label_cols):
        want = None if columns is None else list(dict.fromkeys([*columns, *cols]))
        for _, batch in scan([f], columns=want, batch_rows=batch_rows, param="text_column"):
            collector = LabelCollector(spec, str(f), vocabulary, names)
            add_table(collector, spec, batch, cols)
            labels = collector.finish()
            if labels.n_labels != len(vocabulary):
                extra = labels.names[len(vocabulary) :]
                raise InputError(f"{f}: labels {list(extra)[:5]} are not in the vocabulary")
            yield Dataset(batch, labels, spec, str(f))


def _read_arff(
    path: Path, spec: LabelSpec | None, vocabulary: Sequence[str] | None = None
) -> Dataset:
    """MULAN ARFF via :func:`mlbalance.io.arff.read_arff` (the XML label file beside it).

    The table holds the features plus the labels as a list column (``labels``, or ``_labels``
    if a feature has that name), so that whatever is written from it carries its labels.
    With *vocabulary* the labels are in its order (labels it lacks appended), as for the
    other formats.
    """
    from mlbalance.io.arff import read_arff

    features, labels = read_arff(path)
    if vocabulary is not None:
        known = set(vocabulary)
        labels = labels.with_names([*vocabulary, *(n for n in labels.names if n not in known)])
    table = (
        features
        if isinstance(features, pa.Table)
        else pa.Table.from_pandas(features, preserve_index=False)
    )
    column = "labels"
    while column in table.column_names:
        column = "_" + column
    table = table.append_column(pa.field(column, LABEL_TYPE), label_list_array(labels))
    text = spec.text_column if spec is not None else "text"
    return Dataset(
        table=table,
        labels=labels,
        spec=LabelSpec(column=column, text_column=text),
        source=str(path),
        stats={"duplicate_labels": 0, "empty_rows": int((labels.row_sizes() == 0).sum())},
    )
