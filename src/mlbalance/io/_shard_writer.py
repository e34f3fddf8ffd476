"""The shard writer behind :func:`mlbalance.io.shards.write_shards`: fixed-size Parquet shards
written and hashed by a small thread pool, plus the columns of synthetic and provenance rows."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance.errors import InputError
from mlbalance.io.readers import METADATA_KEY

__all__ = ["ShardWriter", "provenance", "sha256", "shard_name", "synthetic_table"]


def shard_name(i: int, n: int) -> str:
    """``part-00000-of-00004.parquet`` style name of shard *i* of *n*."""
    return f"part-{i:05d}-of-{n:05d}.parquet"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _write_and_hash(table: pa.Table, path: Path, row_group_size: int) -> str:
    pq.write_table(table, path, compression="snappy", row_group_size=row_group_size)
    return sha256(path)


class ShardWriter:
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


def synthetic_table(schema: pa.Schema, n: int, columns: pa.Table | None, label: str) -> pa.Table:
    arrays = []
    for f in schema:
        if columns is not None and f.name in columns.column_names and f.name != label:
            arrays.append(columns.column(f.name).cast(f.type))
        else:
            arrays.append(pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def provenance(
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
