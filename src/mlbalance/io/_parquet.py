"""The one place that lists, opens and scans Parquet files (a file or a folder of shards).

Every reader of mlbalance goes through :func:`parquet_files` and :func:`scan`, so that a
truncated, empty or corrupt shard, a file with repeated column names, or shards whose schemas
disagree get one :class:`~mlbalance.errors.InputError` naming the file, wherever they are met.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance.errors import InputError

__all__ = [
    "arrow_reason",
    "check_unique_columns",
    "missing_column",
    "open_parquet",
    "parquet_errors",
    "parquet_files",
    "scan",
    "schema_of",
]

PARQUET_SUFFIXES = (".parquet", ".pq")


def arrow_reason(exc: BaseException) -> str:
    """The first line of a pyarrow/OS error, without pyarrow's own file prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, pa.ArrowException):
        return exc.strerror.lower()
    return text


@contextlib.contextmanager
def parquet_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn pyarrow's errors while reading *path* into one InputError line naming it."""
    try:
        yield
    except InputError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read Parquet: {arrow_reason(exc)}") from None


def parquet_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of a file or folder (sorted by path; hidden and ``_`` files skipped).

    Side files (``__mlbalance__/manifest.json``, ...) and temporary files (``.NAME.*.tmp``)
    are never data; a folder is searched recursively.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    if p.is_file():
        return [p]
    files = sorted(
        f
        for f in p.rglob("*")
        if f.suffix in PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)
        and f.is_file()
    )
    if not files:
        raise InputError(f"{path}: folder holds no .parquet files")
    return files


def check_unique_columns(path: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Refuse a table whose column names repeat (Arrow allows it; column lookups then fail)."""
    if len(set(names)) == len(names):
        return
    dup, times = Counter(names).most_common(1)[0]
    raise InputError(f"{path}: column {dup!r} appears {times} times; column names must be unique")


def open_parquet(path: Path, **kwargs: object) -> pq.ParquetFile:
    """``pq.ParquetFile(path)`` with its footer checked, errors as one line naming *path*."""
    with parquet_errors(path):
        pf = pq.ParquetFile(path, **kwargs)
        check_unique_columns(path, pf.schema_arrow.names)
        return pf


def schema_of(path: Path) -> pa.Schema:
    """The Arrow schema of one Parquet file (checked as :func:`open_parquet` does)."""
    return open_parquet(path).schema_arrow


def missing_column(
    path: str | os.PathLike[str], column: str, have: Sequence[str], param: str
) -> InputError:
    """The error for a column that is not there, listing the columns that are.

    *param* is the parameter that names the column (``text_column``; the CLI shows its flag).
    """
    shown = ", ".join(list(have)[:12]) + (" ..." if len(have) > 12 else "")
    return InputError(
        f"{path}: no column {column!r} (columns: {shown}); name the column with {param}",
        param=param,
    )


def _string_leaves(pf: pq.ParquetFile, columns: Sequence[str]) -> list[str]:
    """Leaf paths of the string (list) columns among *columns*, to read as dictionaries."""
    leaves = []
    for i in range(pf.metadata.num_columns):
        col = pf.schema.column(i)
        inside = any(col.path == c or col.path.startswith(c + ".") for c in columns)
        if inside and col.physical_type == "BYTE_ARRAY":
            leaves.append(col.path)
    return leaves


def scan(
    path: str | os.PathLike[str] | list[Path],
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int | None = None,
    dictionary: Sequence[str] = (),
    param: str = "label_column",
    memory_map: bool = False,
) -> Iterator[tuple[Path, pa.Table]]:
    """The rows of every Parquet file in order, as ``(file, table)`` parts.

    Parameters
    ----------
    path : path or list of Path
        A Parquet file, a folder of shards, or the files themselves.
    columns : sequence of str, optional
        Columns to read (all by default); a missing one is an InputError naming *param*.
    batch_rows : int, optional
        Parts of about this many rows; by default one part per row group.
    dictionary : sequence of str
        Columns to decode as Arrow dictionaries (string labels: no per-value hashing). Arrow
        cannot decode a nested dictionary column across row groups whose dictionaries differ,
        so a row group that fails is read again plainly.
    param : str
        The parameter to name when a column is missing (the CLI shows its flag).
    memory_map : bool
        Memory-map the files (faster for whole-file streaming).

    Yields
    ------
    (Path, pyarrow.Table)
        The file and a part of its rows, schema metadata dropped.
    """
    files = list(path) if isinstance(path, list) else parquet_files(path)
    for f in files:
        with parquet_errors(f):
            plain = open_parquet(f, memory_map=memory_map)
            names = plain.schema_arrow.names
            for c in columns or ():
                if c not in names:
                    raise missing_column(f, c, names, param)
            want = list(columns) if columns is not None else None
            if batch_rows is not None:
                for batch in plain.iter_batches(batch_size=batch_rows, columns=want):
                    yield f, pa.Table.from_batches([batch]).replace_schema_metadata(None)
                continue
            dicts = _string_leaves(plain, dictionary)
            fast = open_parquet(f, read_dictionary=dicts) if dicts else plain
            for group in range(plain.num_row_groups):
                try:
                    table = fast.read_row_group(group, columns=want)
                except pa.ArrowNotImplementedError:
                    table = plain.read_row_group(group, columns=want)
                yield f, table.replace_schema_metadata(None)
            if plain.num_row_groups == 0:
                yield f, plain.schema_arrow.empty_table().select(want or names)
