"""Writers: atomic files and folders, Parquet with the label vocabulary in its metadata."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance._version import __version__
from mlbalance.errors import InputError, ParameterError
from mlbalance.io.canonical import canonical_table
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
    "SIDE_DIR",
    "atomic_path",
    "check_not_input",
    "mlbalance_metadata",
    "output_dir",
    "output_lock",
    "parse_table_labels",
    "remove_leftovers",
    "side_file",
    "write_json",
    "write_parquet",
]


#: The marker in the names of mlbalance's temporary files and folders (``.OUT.mlbalance-*.tmp``).
TEMP_MARK = "mlbalance-"
#: The sub-folder of an output folder holding its side files (manifest, reports). Arrow,
#: pandas and Spark skip entries starting with ``_``; Hugging Face ``datasets`` skips folders
#: starting with ``__`` (and hidden ones, but not ``_manifest.json``): this name is skipped by
#: all of them, so they read the folder's Parquet files and nothing else.
SIDE_DIR = "__mlbalance__"


def side_file(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder/__mlbalance__/name`` (the side folder created), for a manifest or a report."""
    side = Path(folder) / SIDE_DIR
    side.mkdir(exist_ok=True)
    os.chmod(side, DIR_MODE)
    return side / name


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system cannot (then the caller renames twice).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - glibc < 2.28, musl
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # pragma: no cover
        return False
    raise OSError(err, os.strerror(err), str(b))  # pragma: no cover


def _refuse_dangling_link(target: Path) -> None:
    if target.is_symlink() and not target.exists():
        raise ParameterError(
            f"output {target} is a symbolic link to {os.readlink(target)}, which does not "
            "exist; remove the link or choose another output path"
        )


@contextlib.contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on output *target* (a ``.NAME.lock`` file beside it).

    A second run writing the same output fails at once with one line instead of racing the
    first; the lock is released when the block ends or the process dies (``flock``).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, no check
        yield
        return
    lock = target.parent / f".{target.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise ParameterError(
                f"output {target} is being written by another mlbalance run"
                + (f" (process {holder})" if holder.isdigit() else "")
                + "; wait for it to finish or choose another output path"
            ) from None
        try:  # the previous holder may have removed the file between our open and flock
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _leftovers(target: Path) -> list[Path]:
    """Temporary files and folders an interrupted run on *target* left beside it."""
    name = re.escape(target.name)
    pattern = re.compile(rf"^\.{name}\.({TEMP_MARK}[A-Za-z0-9_]+|[a-z0-9_]{{8}})\.(tmp|old)$")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if pattern.match(p.name))


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir())


def _restore_previous(target: Path, found: list[Path]) -> list[Path]:
    """Put back the output an ``overwrite`` run had moved aside when it was killed.

    :func:`output_dir` replaces an existing folder in two renames (old aside into
    ``.NAME.mlbalance-*.old/x``, new into place); a kill between them leaves *target* absent.
    The newest such ``x`` is renamed back onto *target*. Returns the leftovers still to remove.
    """
    if target.exists() or target.is_symlink():
        return found
    aside = [p for p in found if p.suffix == ".old" and (p / "x").exists()]
    if not aside:
        return found
    newest = max(aside, key=lambda p: p.stat().st_mtime)
    os.replace(newest / "x", target)
    os.rmdir(newest)
    warnings.warn(
        f"restored {target}, which an interrupted run with overwrite had moved aside",
        UserWarning,
        stacklevel=4,
    )
    return [p for p in found if p != newest]


def remove_leftovers(target: Path) -> tuple[int, int]:
    """Remove what interrupted runs on *target* left beside it; warn with the count and size.

    Call with the output's lock held (:func:`output_lock`), so no live run's temporary is
    touched. An output an interrupted ``overwrite`` run had moved aside is put back first.
    Returns ``(entries removed, bytes freed)``.
    """
    found = _restore_previous(target, _leftovers(target))
    freed = 0
    for p in found:
        with contextlib.suppress(OSError):
            freed += _size(p)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    if found:
        warnings.warn(
            f"removed {len(found)} temporary item(s) an interrupted run left beside {target} "
            f"({freed / 1e6:,.1f} MB): {', '.join(p.name for p in found[:3])}"
            + (" ..." if len(found) > 3 else ""),
            UserWarning,
            stacklevel=3,
        )
    return len(found), freed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside *path*; rename it onto *path* if the block succeeds.

    The temporary file is removed on failure, so *path* is never half-written. The output is
    locked while it is written (a concurrent run on the same path fails with one line), and
    temporaries an interrupted run left for this path are removed first.
    """
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    _refuse_dangling_link(target)
    with output_lock(target):
        remove_leftovers(target)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{TEMP_MARK}", suffix=".tmp", dir=target.parent
        )
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
    rows: LabelMatrix | None = None,
    extra_metadata: dict[str, Any] | None = None,
    row_group_size: int | None = None,
    compression: str = "snappy",
) -> LabelSpec:
    """Write *table* to Parquet atomically, labels as names, the vocabulary in its metadata.

    The label column(s) *spec* describes become one ``list<string>`` column of label names
    (:func:`mlbalance.io.canonical.canonical_table`); every other column is written untouched.

    Parameters
    ----------
    table : pyarrow.Table
        The rows to write, labels in the layout *spec* describes.
    path : path-like
        The output file; written to a temporary file first, then renamed.
    labels : LabelMatrix or sequence of str
        The label vocabulary (its order is the dataset's label ids); labels of *table* it
        lacks are appended.
    spec : LabelSpec
        How the labels are stored in *table*.
    rows : LabelMatrix, optional
        The labels of *table*'s rows when already parsed (else they are read from *table*).
    extra_metadata : dict, optional
        More JSON-ready keys for the ``mlbalance`` metadata entry.
    row_group_size : int, optional
        Rows per row group (pyarrow's default when None).
    compression : str, default "snappy"
        Parquet compression codec.

    Returns
    -------
    LabelSpec
        The spec of the written file (one list column of names).
    """
    vocabulary = list(labels.names) if isinstance(labels, LabelMatrix) else list(labels)
    if rows is None:
        rows = parse_table_labels(table, spec, vocabulary, source=str(path))
    elif list(rows.names) != vocabulary:
        rows = rows.with_names(list(dict.fromkeys([*vocabulary, *rows.names])))
    table, out_spec = canonical_table(table, rows, spec)
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(mlbalance_metadata(rows, out_spec, extra_metadata)).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression=compression)
    return out_spec


def parse_table_labels(
    table: pa.Table, spec: LabelSpec, vocabulary: Sequence[str] | None, *, source: str
) -> LabelMatrix:
    """The labels of an in-memory *table* in layout *spec* (the readers' one parser)."""
    from mlbalance.io._collect import LabelCollector, add_table, label_columns
    from mlbalance.io.readers import read_names_file

    names = None
    if spec.names_file is not None:
        names = read_names_file(spec.names_file)
    elif spec.ids_index_vocabulary:
        names = list(vocabulary or ())
    collector = LabelCollector(spec, source, vocabulary, names)
    add_table(collector, spec, table, label_columns(source, spec, table.column_names))
    return collector.finish()


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
    temporary folder is removed and *path* is left as it was; a process killed at any moment
    leaves *path* as it was or complete. While the block runs *path* is locked: a second run
    on the same output fails at once (:func:`output_lock`). Temporary folders an interrupted
    run left beside *path* are removed first, with a warning giving their size.

    Raises
    ------
    ParameterError
        *path* is a non-empty folder and ``overwrite`` is False, is a file, is a dangling
        symbolic link, is an input, or is being written by another run.
    """
    target = Path(path)
    check_not_input(target, inputs)
    _refuse_dangling_link(target)
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target):
        remove_leftovers(target)
        if target.exists():
            if not target.is_dir():
                raise ParameterError(f"output {target} exists and is not a folder")
            if any(target.iterdir()) and not overwrite:
                raise ParameterError(
                    f"output folder {target} is not empty; pass overwrite=True to replace it",
                    param="overwrite",
                )
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.{TEMP_MARK}", suffix=".tmp", dir=parent)
        )
        try:
            yield tmp
            os.chmod(tmp, DIR_MODE)
            if target.exists() and exchange(tmp, target):
                shutil.rmtree(tmp, ignore_errors=True)  # now the old output
            elif target.exists():  # two renames; remove_leftovers undoes a kill between them
                old = Path(
                    tempfile.mkdtemp(
                        prefix=f".{target.name}.{TEMP_MARK}", suffix=".old", dir=parent
                    )
                )
                os.replace(target, old / "x")
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
