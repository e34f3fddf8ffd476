"""Writers: atomic files and folders, Parquet with the label vocabulary in its metadata."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance._version import __version__
from mlbalance.errors import InputError, ParameterError
from mlbalance.io.readers import METADATA_KEY
from mlbalance.io.spec import LabelSpec
from mlbalance.labels import LabelMatrix


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
#: modes for what we create: mkstemp/mkdtemp make 0600/0700, the user expects the usual ones
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK

__all__ = [
    "atomic_path",
    "check_not_input",
    "mlbalance_metadata",
    "output_dir",
    "write_json",
    "write_parquet",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside *path*; rename it onto *path* if the block succeeds.

    The temporary file is removed on failure, so *path* is never half-written.
    """
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write *obj* as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def mlbalance_metadata(
    labels: LabelMatrix | Sequence[str], spec: LabelSpec, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The metadata stored under key ``mlbalance`` in every Parquet file mlbalance writes."""
    names = list(labels.names) if isinstance(labels, LabelMatrix) else list(labels)
    meta = {"labels": names, "label_spec": spec.to_dict(), "mlbalance_version": __version__}
    if extra:
        meta.update(extra)
    return meta


def write_parquet(
    table: pa.Table,
    path: str | os.PathLike[str],
    *,
    labels: LabelMatrix | Sequence[str],
    spec: LabelSpec,
    extra_metadata: dict[str, Any] | None = None,
    row_group_size: int | None = None,
    compression: str = "snappy",
) -> None:
    """Write *table* to Parquet atomically, with the label vocabulary and spec in its metadata.

    Parameters
    ----------
    table : pyarrow.Table
        The rows to write (every input column, untouched).
    path : path-like
        The output file; written to a temporary file first, then renamed.
    labels : LabelMatrix or sequence of str
        The label vocabulary (its order is the dataset's label ids).
    spec : LabelSpec
        How the labels are stored in *table*.
    extra_metadata : dict, optional
        More JSON-ready keys for the ``mlbalance`` metadata entry.
    row_group_size : int, optional
        Rows per row group (pyarrow's default when None).
    compression : str, default "snappy"
        Parquet compression codec.
    """
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(mlbalance_metadata(labels, spec, extra_metadata)).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression=compression)


def check_not_input(
    output: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]]
) -> None:
    """Refuse an output path that is, contains or lies inside one of the *inputs*."""
    out = Path(output).resolve()
    for item in inputs:
        src = Path(item).resolve()
        if out == src or src.is_relative_to(out) or out.is_relative_to(src):
            raise ParameterError(f"output {output} would overwrite the input {item}")


@contextlib.contextmanager
def output_dir(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Build an output folder atomically.

    Yields a temporary folder beside *path*; when the block succeeds the folder is renamed onto
    *path* (an existing folder is replaced only with ``overwrite=True``). On failure the
    temporary folder is removed and *path* is left as it was.

    Raises
    ------
    ParameterError
        *path* is a non-empty folder and ``overwrite`` is False, is a file, or is an input.
    """
    target = Path(path)
    check_not_input(target, inputs)
    if target.exists():
        if not target.is_dir():
            raise ParameterError(f"output {target} exists and is not a folder")
        if any(target.iterdir()) and not overwrite:
            raise ParameterError(
                f"output folder {target} is not empty; pass --overwrite to replace it"
            )
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
