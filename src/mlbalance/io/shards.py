"""The shard folder: Parquet shards plus a manifest, written, listed, verified, read.

A shard folder (what ``mlbalance resample`` and ``prepare`` write) holds shards
``part-00000-of-000NN.parquet`` and a manifest ``__mlbalance__/manifest.json``. Arrow, pandas,
Spark and Hugging Face ``datasets`` all skip the ``__mlbalance__`` folder, so
``pd.read_parquet(DIR)``, ``pq.read_table(DIR)``, ``pyarrow.dataset.dataset(DIR)`` and
``datasets.load_dataset("parquet", data_dir=DIR)`` read the folder as it is (a
``_manifest.json`` beside the shards would still break ``datasets``, which skips only hidden
files and ``__`` folders). Folders written by mlbalance 0.1 hold ``manifest.json`` beside the
shards; they still read and verify.

:func:`write_shards` copies the rows a resampler chose from the input into shards, input batch
by input batch (pyarrow ``take``), so the text column never has to be in memory at once. Rows
keep every input column and come in input order; the labels are written as one list column of
label names (:mod:`mlbalance.io.canonical`). When every input row is kept with its labels
(ML-ROS, target counts without a cap), each input batch (up to 131,072 rows) is passed through
and followed by the extra copies of its rows, so the text is not copied; otherwise a copy sits
right after its source row. Synthetic rows (MLSMOTE) come last. The manifest records the label
vocabulary and, per shard, its file name, rows, bytes and sha256; :func:`verify_shards` checks
a folder against it. Every reader of a manifest goes through :func:`read_manifest`, which
accepts only plain file names inside the folder as shards.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance._threads import prefetch
from mlbalance.errors import InputError
from mlbalance.io._parquet import parquet_errors, scan
from mlbalance.io._shard_writer import (
    ShardWriter,
    provenance,
    sha256,
    shard_name,
    synthetic_table,
)
from mlbalance.io.canonical import canonical_table, is_canonical, label_list_array
from mlbalance.io.readers import METADATA_KEY, detect_format, resolve_spec
from mlbalance.io.spec import LabelSpec
from mlbalance.io.writers import SIDE_DIR, mlbalance_metadata, side_file, write_json
from mlbalance.labels import LabelMatrix

if TYPE_CHECKING:
    from mlbalance.resample.base import Resampled

__all__ = [
    "DEFAULT_ROWS_PER_SHARD",
    "LEGACY_MANIFEST",
    "MANIFEST",
    "SHARD_PATTERN",
    "check_file_name",
    "input_batches",
    "manifest_path",
    "read_manifest",
    "shard_files",
    "shard_name",
    "verify_shards",
    "write_manifest",
    "write_shards",
]

MANIFEST = f"{SIDE_DIR}/manifest.json"
#: The manifest's name in folders written by mlbalance 0.1 (still read and verified).
LEGACY_MANIFEST = "manifest.json"
SHARD_PATTERN = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")
DEFAULT_ROWS_PER_SHARD = 500_000
FORMAT = "mlbalance-shards/1"


# --- reading the input in order ----------------------------------------------------------------
def input_batches(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    spec: LabelSpec | None = None,
    batch_rows: int = 1 << 17,
) -> tuple[LabelSpec, Iterator[pa.Table]]:
    """The input's label layout and its rows, every column, in order, in tables of about
    *batch_rows* rows.

    Parquet is streamed file by file (memory-mapped, metadata dropped); other formats are read
    whole by :func:`mlbalance.io.read_dataset` and sliced (an ARFF table holds its features
    and a list column of label names).
    """
    fmt = detect_format(path, format)
    if fmt == "parquet":
        spec, _ = resolve_spec(path, spec, None)
        parts = scan(path, batch_rows=batch_rows, memory_map=True)
        return spec, (table for _, table in parts)
    from mlbalance.io.readers import read_dataset

    data = read_dataset(path, spec, format=fmt)
    table = data.table.replace_schema_metadata(None)
    slices = (table.slice(start, batch_rows) for start in range(0, table.num_rows, batch_rows))
    return data.spec, slices


# --- writing ----------------------------------------------------------------------------------
def write_shards(
    source: str | os.PathLike[str],
    result: Resampled,
    folder: str | os.PathLike[str],
    *,
    input_labels: LabelMatrix,
    spec: LabelSpec | None = None,
    format: str | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    synthetic: pa.Table | None = None,
    add_columns: Sequence[str] = (),
    extra_metadata: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Write the output rows of *result* as Parquet shards into *folder* (an empty folder).

    Parameters
    ----------
    source : path-like
        The input dataset (the rows *result* indexes).
    result : Resampled
        Output rows as input indices (plus new labels for relabelled rows, and synthetic rows).
    folder : path-like
        Where the shards go (the caller's temporary folder: see :func:`mlbalance.io.output_dir`).
    input_labels : LabelMatrix
        The labels of the input rows, as read.
    spec : LabelSpec, optional
        The input's label layout (default: the stored one). The shards hold the labels as
        one list column of names whatever the input layout.
    rows_per_shard : int
        Most rows per shard.
    synthetic : pyarrow.Table, optional
        Columns of the synthetic rows (e.g. ``embedding``, or one column per numeric
        feature); every other column is null.
    add_columns : sequence of str
        Provenance columns to add: ``source_row`` (int64), ``synthetic`` (bool),
        ``neighbour_row`` (int64, null unless synthetic).
    extra_metadata : dict, optional
        More keys for each shard's ``mlbalance`` schema metadata.

    Returns
    -------
    list of dict
        Per shard: ``file``, ``rows``, ``sha256``, ``bytes``.
    """
    from mlbalance._progress import progress_bar

    folder = Path(folder)
    spec, batches = input_batches(source, format=format, spec=spec)
    real = ~result.synthetic
    real_pos = np.flatnonzero(real)
    order = real_pos[np.argsort(result.indices[real], kind="stable")]  # output positions
    src = result.indices[order]
    relabel = bool(result.relabelled[real].any())
    copies = np.bincount(src, minlength=result.n_input)
    # Every row kept, labels unchanged (ML-ROS, target counts without a cap): pass each input
    # batch through (no copy of the text) and append that batch's extra copies.
    pass_through = not relabel and bool((copies >= 1).all()) and not add_columns
    out_spec = spec.canonical()
    meta: bytes | None = None
    bar = progress_bar(desc="writing shards", total=result.n_output, unit="rows", enabled=progress)
    writer: ShardWriter | None = None
    schema: pa.Schema | None = None
    as_is = False
    offset = 0
    try:
        for batch in prefetch(batches, depth=2):
            lo, hi = offset, offset + batch.num_rows
            offset = hi
            if writer is None:  # the written schema and spec, from an empty slice
                as_is = is_canonical(batch.schema, spec)  # labels already a list of names
                empty, out_spec = canonical_table(
                    batch.slice(0, 0),
                    result.labels.take(np.zeros(0, np.int64)),
                    spec,
                    relabelled=True,
                )
                schema = empty.schema
                meta = json.dumps(
                    mlbalance_metadata(result.labels, out_spec, extra_metadata)
                ).encode()
                writer = ShardWriter(folder, result.n_output, rows_per_shard, meta, bar)
            if pass_through:
                part = (
                    batch
                    if as_is
                    else canonical_table(batch, input_labels.take(np.arange(lo, hi)), spec)[0]
                )
                writer.add(part)
                extra = np.repeat(np.arange(lo, hi), copies[lo:hi] - 1) - lo
                if len(extra):
                    writer.add(part.take(pa.array(extra, type=pa.int64())))
                continue
            a, b = np.searchsorted(src, [lo, hi])
            if a == b:
                continue
            part = batch.take(pa.array(src[a:b] - lo, type=pa.int64()))
            if relabel or not as_is:
                labels = result.labels.take(order[a:b])
                part, _ = canonical_table(part, labels, spec, relabelled=relabel)
            writer.add(provenance(part, src[a:b], add_columns, synthetic_rows=None))
        if offset != result.n_input:
            raise InputError(
                f"{source}: has {offset} rows but the labels read had "
                f"{result.n_input}; did the input change while running?"
            )
        assert writer is not None and schema is not None
        n_syn = int(result.synthetic.sum())
        if n_syn:
            syn_pos = np.flatnonzero(result.synthetic)
            part = synthetic_table(schema, n_syn, synthetic, out_spec.column)
            i = part.schema.get_field_index(out_spec.column)
            part = part.set_column(
                i, part.schema.field(i), label_list_array(result.labels.take(syn_pos))
            )
            neighbours = result.neighbour[syn_pos]
            writer.add(
                provenance(part, result.indices[syn_pos], add_columns, synthetic_rows=neighbours)
            )
        return writer.close()
    finally:
        bar.close()
        if writer is not None:
            writer.pool.shutdown(wait=True)


# --- the manifest ---------------------------------------------------------------------------
def write_manifest(folder: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write *manifest* as ``folder/__mlbalance__/manifest.json`` (atomically), its shape checked."""
    manifest = {"format": FORMAT, **manifest}
    _check_manifest(manifest, Path(folder) / MANIFEST)
    path = side_file(folder, "manifest.json")
    write_json(manifest, path)
    return path


def manifest_path(folder: str | os.PathLike[str]) -> Path:
    """``folder/__mlbalance__/manifest.json``, or ``manifest.json`` in folders written by mlbalance 0.1."""
    folder = Path(folder)
    for name in (MANIFEST, LEGACY_MANIFEST):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder}: no {MANIFEST} (not a mlbalance shard folder)")


def check_file_name(name: object, where: str | os.PathLike[str], what: str = "shard") -> str:
    """*name* as listed by a file mlbalance reads (a manifest, a split report): it must be a
    plain ``.parquet`` file name inside the folder (no separator, no ``..``, not absolute, not
    hidden), else one :class:`InputError` naming *where*."""
    if (
        not isinstance(name, str)
        or not name.endswith(".parquet")
        or name != os.path.basename(name)
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name.startswith(".")
        or os.path.isabs(name)
    ):
        raise InputError(
            f"{where}: {what} {str(name)[:80]!r} is not a plain .parquet file name inside the "
            "folder; refusing to read it"
        )
    return name


def _check_manifest(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise InputError(f"{where}: not a valid manifest (a JSON object is expected)")
    shards, labels = manifest.get("shards"), manifest.get("labels")
    if not isinstance(shards, list) or not shards:
        raise InputError(f"{where}: not a valid manifest (no list of shards)")
    if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
        raise InputError(f"{where}: not a valid manifest (labels is not a list of names)")
    seen = set()
    for s in shards:
        if not isinstance(s, dict):
            raise InputError(f"{where}: not a valid manifest (a shard entry is not an object)")
        name = check_file_name(s.get("file"), where)
        if name in seen:
            raise InputError(f"{where}: shard {name!r} is listed twice")
        seen.add(name)
        if not isinstance(s.get("rows"), int) or isinstance(s.get("rows"), bool):
            raise InputError(f"{where}: shard {name!r} has no row count")
        digest = s.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise InputError(f"{where}: shard {name!r} has no valid sha256")


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a shard folder, checked: shards are plain file names in the folder."""
    path = manifest_path(folder)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: not a valid manifest ({type(exc).__name__})") from None
    _check_manifest(manifest, path)
    return dict(manifest)


def shard_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The shard files a folder's manifest lists, in order."""
    folder = Path(folder)
    return [folder / s["file"] for s in read_manifest(folder)["shards"]]


# --- verification --------------------------------------------------------------------------------
def _counts_dict(labels: LabelMatrix) -> dict[str, int]:
    return {n: int(c) for n, c in zip(labels.names, labels.counts())}


def _check_shard(folder: Path, s: dict[str, Any], names: list[str]) -> tuple[int, list[str]]:
    """``(rows, problems)`` of one listed shard."""
    f = folder / s["file"]
    if f.is_symlink():
        return 0, [f"{s['file']}: is a symbolic link, not a shard"]
    if not f.is_file():
        return 0, [f"{s['file']}: missing"]
    problems = []
    size = f.stat().st_size
    if isinstance(s.get("bytes"), int) and size != s["bytes"]:
        problems.append(f"{s['file']}: {size} bytes, manifest says {s['bytes']}")
    digest = sha256(f)
    if digest != s["sha256"]:
        problems.append(
            f"{s['file']}: sha256 {digest[:12]}... differs from the manifest's "
            f"{s['sha256'][:12]}..."
        )
        return 0, problems
    try:
        with parquet_errors(f):
            schema = pq.read_schema(f)
            rows = pq.ParquetFile(f).metadata.num_rows
    except InputError as exc:
        return 0, [*problems, f"{s['file']}: unreadable Parquet ({str(exc).split(': ', 1)[-1]})"]
    if rows != s["rows"]:
        problems.append(f"{s['file']}: {rows} rows, manifest says {s['rows']}")
    raw = (schema.metadata or {}).get(METADATA_KEY)
    try:
        stored = json.loads(raw).get("labels") if raw else None
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        stored = None
    if stored != names:
        problems.append(f"{s['file']}: label vocabulary differs from the manifest's")
    return rows, problems


def verify_shards(
    folder: str | os.PathLike[str], *, check_labels: bool = True, progress: bool | None = None
) -> dict[str, Any]:
    """Check a shard folder against its manifest.

    Checks that the manifest is readable and lists only plain file names in the folder; every
    listed shard exists (not as a symbolic link) with the recorded size, sha256 and row
    count; no unlisted ``.parquet`` file is present; the total rows match; each shard's label
    vocabulary is the manifest's; and (``check_labels``) the label counts read back from the
    shards equal ``label_counts_after``. Nothing outside *folder* is opened.

    Returns
    -------
    dict
        ``ok`` (bool), ``problems`` (list of str), ``shards``, ``rows``, ``method``,
        ``manifest`` (its file name).
    """
    from mlbalance._progress import progress as progress_iter

    folder = Path(folder)
    path = manifest_path(folder)
    manifest = read_manifest(folder)
    shards, names = manifest["shards"], list(manifest["labels"])
    problems: list[str] = []
    listed = {s["file"] for s in shards}
    for f in sorted(folder.glob("*.parquet")):
        if f.name not in listed:
            problems.append(f"{f.name}: not listed in the manifest")
    total = 0
    for s in progress_iter(shards, desc="verifying", unit="shard", enabled=progress):
        rows, found = _check_shard(folder, s, names)
        total += rows
        problems.extend(found)
    if total != manifest.get("rows") and not problems:
        problems.append(f"shards hold {total} rows, manifest says {manifest.get('rows')}")
    if check_labels and not problems:
        problems.extend(_check_counts(folder, manifest, names))
    return {
        "folder": str(folder),
        "ok": not problems,
        "problems": problems,
        "shards": len(shards),
        "rows": total,
        "method": manifest.get("method"),
        "manifest": path.name,
    }


def _check_counts(folder: Path, manifest: dict[str, Any], names: list[str]) -> list[str]:
    from mlbalance.io.readers import read_labels

    try:
        spec = LabelSpec.from_dict(manifest.get("label_spec") or {})
    except InputError as exc:
        return [f"{MANIFEST}: {exc}"]
    labels = read_labels(folder, spec, vocabulary=names)
    got = _counts_dict(labels)
    want = manifest.get("label_counts_after") or {}
    diff = [n for n in names if got.get(n, 0) != want.get(n, 0)]
    if not diff:
        return []
    n = diff[0]
    return [
        f"label counts differ from the manifest for {len(diff)} label(s), "
        f"e.g. {n!r}: {got.get(n, 0)} rows, manifest says {want.get(n, 0)}"
    ]
