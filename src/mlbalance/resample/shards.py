"""Balanced Parquet shards with a manifest, written by row index, and their verification.

:func:`write_shards` copies the rows a resampler chose from the input file(s) into shards
``part-00000-of-000NN.parquet``, input batch by input batch (pyarrow ``take``), so the text
column never has to be in memory at once. Rows keep every input column and come in input
order. When every input row is kept with its labels (ML-ROS, target counts without a cap),
each input batch (up to 131,072 rows) is passed through untouched and followed by the extra
copies of its rows, so the text is not copied; otherwise a copy sits right after its source
row. Synthetic rows (MLSMOTE) come last. The manifest
(``manifest.json``) records the label vocabulary, the method, its parameters and seed, label
counts and imbalance measures before and after, and per shard its file name, rows and sha256.
:func:`verify_shards` checks a folder against its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance._threads import prefetch
from mlbalance._version import __version__
from mlbalance.errors import InputError
from mlbalance.io import LabelSpec, mlbalance_metadata, parquet_files
from mlbalance.io.readers import METADATA_KEY, detect_format
from mlbalance.labels import LabelMatrix
from mlbalance.resample.base import Resampled, imbalance_measures

__all__ = [
    "MANIFEST",
    "SHARD_PATTERN",
    "build_manifest",
    "encode_labels",
    "iter_input_batches",
    "shard_name",
    "verify_shards",
    "write_shards",
]

MANIFEST = "manifest.json"
SHARD_PATTERN = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")
DEFAULT_ROWS_PER_SHARD = 500_000


def shard_name(i: int, n: int) -> str:
    """``part-00000-of-00004.parquet`` style name of shard *i* of *n*."""
    return f"part-{i:05d}-of-{n:05d}.parquet"


# --- reading the input in order ----------------------------------------------------------------
def iter_input_batches(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    spec: LabelSpec | None = None,
    batch_rows: int = 1 << 17,
) -> Iterator[pa.Table]:
    """The input's rows, every column, in order, as tables of about *batch_rows* rows.

    Parquet is streamed file by file (its metadata dropped); other formats are read whole by
    :func:`mlbalance.io.read_dataset` and sliced.
    """
    fmt = detect_format(path, format)
    if fmt == "parquet":
        for f in parquet_files(path):
            try:
                pf = pq.ParquetFile(f, memory_map=True)  # measured 2x faster than buffered reads
                for batch in pf.iter_batches(batch_size=batch_rows):
                    yield pa.Table.from_batches([batch]).replace_schema_metadata(None)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{f}: cannot read Parquet: {exc}") from None
        return
    from mlbalance.io import read_dataset

    data = read_dataset(path, spec, format=fmt)
    table = data.table.replace_schema_metadata(None)
    if fmt == "arff" and data.spec.column not in table.column_names:
        # older readers returned only the features; add the labels as a list column
        column = (spec or LabelSpec()).column
        if column in table.column_names:
            raise InputError(
                f"{path}: a feature is named {column!r}; choose another "
                "--label-column for the output"
            )
        m = data.labels.matrix
        names = np.asarray(data.labels.names, dtype=object)
        table = table.append_column(
            column,
            pa.ListArray.from_arrays(
                pa.array(m.indptr.astype(np.int32)), pa.array(names[m.indices], type=pa.string())
            ),
        )
    for start in range(0, table.num_rows, batch_rows):
        yield table.slice(start, batch_rows)


# --- labels back into the table's layout ----------------------------------------------------------
def _names_file(spec: LabelSpec) -> list[str] | None:
    if spec.names_file is None:
        return None
    return [
        s.strip()
        for s in Path(spec.names_file).read_text(encoding="utf-8").splitlines()
        if s.strip()
    ]


def encode_labels(labels: LabelMatrix, spec: LabelSpec, schema: pa.Schema) -> dict[str, pa.Array]:
    """The label column(s) holding *labels*, in the layout *spec* describes and *schema* types.

    Used for rows whose labels changed (REMEDIAL, MLSMOTE). A list column gets lists, a
    delimited string column joined names (or ids), a plain string column a JSON list, 0/1
    columns one column per label.
    """
    m = labels.matrix
    if spec.is_indicator:
        out = {}
        index = labels.label_index()
        for col in spec.label_columns(schema.names):
            name = col[len(spec.prefix) :] if spec.prefix is not None and not spec.columns else col
            j = index[name]
            values = np.asarray(m[:, j].toarray()).ravel()
            out[col] = pa.array(values).cast(schema.field(col).type)
        return out
    field = schema.field(spec.column)
    names_file = _names_file(spec)
    if names_file is not None:
        pos = {n: i for i, n in enumerate(names_file)}
        tokens: list[Any] = [pos[n] for n in labels.names]
    else:
        tokens = list(labels.names)
    ftype = field.type
    if pa.types.is_list(ftype) or pa.types.is_large_list(ftype):
        vtype = ftype.value_type
        if pa.types.is_integer(vtype):
            ids = np.asarray([int(t) for t in tokens], dtype=np.int64)
            values = pa.array(ids[m.indices])
        else:
            values = pa.array(np.asarray([str(t) for t in tokens], dtype=object)[m.indices])
        arr = pa.ListArray.from_arrays(pa.array(m.indptr.astype(np.int32)), values)
        return {spec.column: arr.cast(ftype)}
    rows = labels.to_lists()
    lookup = dict(zip(labels.names, tokens))
    if pa.types.is_integer(ftype):
        bad = next((i for i, r in enumerate(rows) if len(r) != 1), None)
        if bad is not None:
            raise InputError(
                f"column {spec.column!r} holds one label id per row; an output row "
                f"has {len(rows[bad])} labels"
            )
        return {spec.column: pa.array([int(lookup[r[0]]) for r in rows]).cast(ftype)}
    if spec.sep is not None:
        text = [spec.sep.join(str(lookup[n]) for n in r) for r in rows]
    else:
        text = [json.dumps([lookup[n] for n in r], ensure_ascii=False) for r in rows]
    return {spec.column: pa.array(text).cast(ftype)}


def _replace_columns(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, arr in columns.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), arr)
    return table


# --- writing ----------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _write_and_hash(table: pa.Table, path: Path, row_group_size: int) -> str:
    pq.write_table(table, path, compression="snappy", row_group_size=row_group_size)
    return _sha256(path)


class _ShardWriter:
    """Collects tables and writes fixed-size shards.

    Each shard is written and hashed by a small thread pool (pyarrow and hashlib release the
    GIL), so encoding and compression of one shard overlap with reading and ``take`` of the
    next; at most ``workers`` shards are in flight, which bounds memory.
    """

    def __init__(
        self,
        folder: Path,
        n_rows: int,
        rows_per_shard: int,
        metadata: bytes,
        progress: Any,
        workers: int | None = None,
    ) -> None:
        self.folder = folder
        self.rows_per_shard = rows_per_shard
        self.n_shards = max(1, -(-n_rows // rows_per_shard))
        self.metadata = metadata
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.shards: list[dict[str, Any]] = []
        self.hashes: list[Future[str]] = []
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(max_workers=self.workers)
        self.progress = progress

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table)
        self.pending_rows += table.num_rows
        while self.pending_rows >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def _flush(self, rows: int) -> None:
        table = (
            pa.concat_tables(self.pending, promote_options="default")
            if len(self.pending) > 1
            else self.pending[0]
        )
        head, rest = table.slice(0, rows), table.slice(rows)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows
        name = shard_name(len(self.shards), self.n_shards)
        meta = dict(head.schema.metadata or {})
        meta[METADATA_KEY] = self.metadata
        in_flight = [f for f in self.hashes if not f.done()]
        if len(in_flight) >= self.workers:
            in_flight[0].result()
        self.hashes.append(
            self.pool.submit(
                _write_and_hash,
                head.replace_schema_metadata(meta),
                self.folder / name,
                min(rows, 1 << 17),
            )
        )
        self.shards.append({"file": name, "rows": head.num_rows})
        self.progress.update(head.num_rows)

    def close(self) -> list[dict[str, Any]]:
        if self.pending_rows or not self.shards:
            if not self.pending:
                raise InputError("nothing to write: the output has no rows")
            self._flush(self.pending_rows)
        for shard, fut in zip(self.shards, self.hashes):
            shard["sha256"] = fut.result()
            shard["bytes"] = (self.folder / shard["file"]).stat().st_size
        self.pool.shutdown()
        if len(self.shards) != self.n_shards:  # pragma: no cover - invariant
            raise RuntimeError(f"wrote {len(self.shards)} shards, planned {self.n_shards}")
        return self.shards


def write_shards(
    source: str | os.PathLike[str],
    result: Resampled,
    folder: str | os.PathLike[str],
    *,
    spec: LabelSpec,
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
    spec : LabelSpec
        The input's label layout (relabelled rows are written in it).
    rows_per_shard : int
        Most rows per shard.
    synthetic : pyarrow.Table, optional
        Columns of the synthetic rows (e.g. ``embedding``); every other column is null.
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
    real = ~result.synthetic
    real_pos = np.flatnonzero(real)
    order = real_pos[np.argsort(result.indices[real], kind="stable")]  # output positions
    src = result.indices[order]
    relabel = bool(result.relabelled[real].any())
    copies = np.bincount(src, minlength=result.n_input)
    # Every row kept, labels unchanged (ML-ROS, target counts without a cap): pass each input
    # batch through untouched (no copy of the text) and append that batch's extra copies.
    pass_through = not relabel and bool((copies >= 1).all()) and not add_columns
    meta = json.dumps(mlbalance_metadata(result.labels, spec, extra_metadata)).encode()
    bar = progress_bar(desc="writing shards", total=result.n_output, unit="rows", enabled=progress)
    writer = _ShardWriter(folder, result.n_output, rows_per_shard, meta, bar)
    schema: pa.Schema | None = None
    offset = 0
    try:
        for batch in prefetch(iter_input_batches(source, format=format, spec=spec), depth=2):
            schema = batch.schema if schema is None else schema
            lo, hi = offset, offset + batch.num_rows
            offset = hi
            if pass_through:
                writer.add(batch)
                extra = np.repeat(np.arange(lo, hi), copies[lo:hi] - 1) - lo
                if len(extra):
                    writer.add(batch.take(pa.array(extra, type=pa.int64())))
                continue
            a, b = np.searchsorted(src, [lo, hi])
            if a == b:
                continue
            take = pa.array(src[a:b] - lo, type=pa.int64())
            part = batch.take(take)
            if relabel:
                part = _replace_columns(
                    part, encode_labels(result.labels.take(order[a:b]), spec, part.schema)
                )
            part = _provenance(part, src[a:b], add_columns, synthetic_rows=None)
            writer.add(part)
        if offset != result.n_input:
            raise InputError(
                f"{source}: has {offset} rows but the labels read had "
                f"{result.n_input}; did the input change while running?"
            )
        n_syn = int(result.synthetic.sum())
        if n_syn:
            assert schema is not None
            syn_pos = np.flatnonzero(result.synthetic)
            part = _synthetic_table(schema, n_syn, synthetic)
            part = _replace_columns(
                part, encode_labels(result.labels.take(syn_pos), spec, part.schema)
            )
            part = _provenance(
                part, result.indices[syn_pos], add_columns, synthetic_rows=result.neighbour[syn_pos]
            )
            writer.add(part)
        return writer.close()
    finally:
        bar.close()
        writer.pool.shutdown(wait=True)


def _synthetic_table(schema: pa.Schema, n: int, columns: pa.Table | None) -> pa.Table:
    arrays = []
    for f in schema:
        if columns is not None and f.name in columns.column_names:
            arrays.append(columns.column(f.name).cast(f.type))
        else:
            arrays.append(pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _provenance(
    table: pa.Table, source_rows: np.ndarray, add: Sequence[str], synthetic_rows: np.ndarray | None
) -> pa.Table:
    n = table.num_rows
    for name in add:
        if name == "source_row":
            arr = pa.array(source_rows.astype(np.int64))
        elif name == "synthetic":
            arr = pa.array(np.full(n, synthetic_rows is not None))
        elif name == "neighbour_row":
            arr = (
                pa.array(synthetic_rows.astype(np.int64))
                if synthetic_rows is not None
                else pa.nulls(n, pa.int64())
            )
        else:  # pragma: no cover - programming error
            raise ValueError(name)
        table = table.append_column(pa.field(name, arr.type), arr)
    return table


# --- manifest -----------------------------------------------------------------------------------
def _counts_dict(labels: LabelMatrix) -> dict[str, int]:
    return {n: int(c) for n, c in zip(labels.names, labels.counts())}


def build_manifest(
    *,
    method: str,
    parameters: dict[str, Any],
    seed: int | None,
    source: str,
    spec: LabelSpec,
    before: LabelMatrix,
    result: Resampled,
    shards: list[dict[str, Any]],
    columns_added: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a shard folder (JSON-ready, deterministic: no timestamps)."""
    after = result.labels
    manifest: dict[str, Any] = {
        "format": "mlbalance-shards/1",
        "mlbalance_version": __version__,
        "method": method,
        "parameters": parameters,
        "seed": seed,
        "input": {"path": str(source), "rows": int(result.n_input)},
        "rows": int(result.n_output),
        "report": result.report(),
        "labels": list(after.names),
        "label_spec": spec.to_dict(),
        "columns_added": list(columns_added),
        "label_counts_before": _counts_dict(before),
        "label_counts_after": _counts_dict(after),
        "measures_before": imbalance_measures(before),
        "measures_after": imbalance_measures(after),
        "shards": shards,
    }
    if extra:
        manifest.update(extra)
    return manifest


# --- verification --------------------------------------------------------------------------------
def verify_shards(
    folder: str | os.PathLike[str], *, check_labels: bool = True, progress: bool | None = None
) -> dict[str, Any]:
    """Check a shard folder against its manifest.

    Checks that the manifest is readable; every listed shard exists with the recorded size,
    sha256 and row count; no unlisted ``part-*.parquet`` file is present; the total rows match;
    each shard's label vocabulary is the manifest's; and (``check_labels``) the label counts
    read back from the shards equal ``label_counts_after``.

    Returns
    -------
    dict
        ``ok`` (bool), ``problems`` (list of str), ``shards``, ``rows``.
    """
    from mlbalance._progress import progress as progress_iter

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST} (not a mlbalance shard folder)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        shards = manifest["shards"]
        names = list(manifest["labels"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid manifest ({exc})") from None
    problems: list[str] = []
    listed = {s["file"] for s in shards}
    for f in sorted(folder.glob("*.parquet")):
        if f.name not in listed:
            problems.append(f"{f.name}: not listed in the manifest")
    total = 0
    for s in progress_iter(shards, desc="verifying", unit="shard", enabled=progress):
        f = folder / s["file"]
        if not f.is_file():
            problems.append(f"{s['file']}: missing")
            continue
        if "bytes" in s and f.stat().st_size != s["bytes"]:
            problems.append(f"{s['file']}: {f.stat().st_size} bytes, manifest says {s['bytes']}")
        digest = _sha256(f)
        if digest != s["sha256"]:
            problems.append(
                f"{s['file']}: sha256 {digest[:12]}... differs from the manifest's "
                f"{s['sha256'][:12]}..."
            )
            continue
        try:
            md = pq.ParquetFile(f).metadata
        except (pa.ArrowInvalid, OSError) as exc:
            problems.append(f"{s['file']}: unreadable Parquet ({exc})")
            continue
        if md.num_rows != s["rows"]:
            problems.append(f"{s['file']}: {md.num_rows} rows, manifest says {s['rows']}")
        total += md.num_rows
        raw = (pq.read_schema(f).metadata or {}).get(METADATA_KEY)
        stored = json.loads(raw).get("labels") if raw else None
        if stored != names:
            problems.append(f"{s['file']}: label vocabulary differs from the manifest's")
    if total != manifest.get("rows") and not problems:
        problems.append(f"shards hold {total} rows, manifest says {manifest.get('rows')}")
    if check_labels and not problems:
        from mlbalance.io import read_labels

        spec = LabelSpec.from_dict(manifest.get("label_spec", {}))
        labels = read_labels(folder, spec, vocabulary=names)
        got = _counts_dict(labels)
        want = manifest.get("label_counts_after", {})
        diff = [n for n in names if got.get(n, 0) != want.get(n, 0)]
        if diff:
            n = diff[0]
            problems.append(
                f"label counts differ from the manifest for {len(diff)} label(s), "
                f"e.g. {n!r}: {got.get(n, 0)} rows, manifest says {want.get(n, 0)}"
            )
    return {
        "folder": str(folder),
        "ok": not problems,
        "problems": problems,
        "shards": len(shards),
        "rows": total,
        "method": manifest.get("method"),
    }
