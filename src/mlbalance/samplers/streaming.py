"""Streaming repeat-factor sampling over Parquet shards that do not fit in memory.

:class:`RepeatFactorIterableDataset` reads Parquet files (a folder of shards such as
``mlbalance resample`` or ``split`` write, or a list of files) row group by row group,
emits each row ``floor(r) + Bernoulli(r - floor(r))`` times through a seeded shuffle
buffer, and splits the row groups between ranks and DataLoader workers so that every row
of the data set belongs to exactly one of them.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from torch.utils.data import IterableDataset, get_worker_info

from mlbalance._progress import progress
from mlbalance.errors import InputError, ParameterError
from mlbalance.samplers._shard import default_replicas
from mlbalance.samplers.factors import label_repeat_factors, stochastic_round
from mlbalance.samplers.sampler import _check_epoch, _check_factors, _check_seed

__all__ = ["RepeatFactorIterableDataset", "parquet_files"]

# Stream tags, distinct from the map-style samplers' tags.
_UNIT_ORDER, _UNIT_ROUND, _BUFFER = 10, 11, 12
#: Below this many row groups per reader, row groups are cut into slices (see ``pieces``).
PIECES_PER_READER = 4
# Random buffer positions are drawn in blocks of this many.
_DRAW_BLOCK = 4096


@dataclass(frozen=True)
class _Unit:
    """One Parquet row group: the unit of work given to one rank and worker."""

    uid: int
    file: int
    row_group: int
    start: int  # global index of its first row
    n_rows: int


def parquet_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The Parquet files of ``source``: a file, a folder (searched recursively, sorted) or a list.

    Folders are listed by :func:`mlbalance.io.parquet_files` (hidden and ``_``-prefixed
    entries such as manifests and temporary files are skipped).
    """
    from mlbalance.io import parquet_files as folder_files

    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise InputError("no Parquet files given")
    files: list[Path] = []
    for item in items:
        files.extend(folder_files(item))
    return files


def _spec_from_metadata(path: Path) -> tuple[str, str | None]:
    """Label column and separator stored by mlbalance in the file's metadata, else defaults."""
    from mlbalance.io import read_metadata

    meta = read_metadata(path) or {}
    spec = meta.get("label_spec") or {}
    if spec.get("columns") or spec.get("prefix") or spec.get("names_file"):
        raise InputError(
            f"{path}: labels are stored as 0/1 columns or integer ids with a names file; "
            "the streaming sampler reads list or delimited label columns only. Compute "
            "factors=repeat_factors(read_labels(path), t) and pass them instead"
        )
    return str(spec.get("column") or "labels"), spec.get("sep")


def _label_entries(
    column: pa.ChunkedArray | pa.Array, sep: str | None, where: str
) -> tuple[np.ndarray, pa.Array]:
    """``(offsets, values)``: row ``i``'s labels are ``values[offsets[i]:offsets[i + 1]]``.

    Accepts a list column (strings or ints) or, with ``sep``, a delimited string column.
    Nulls and empty names are no label.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        if sep is None:
            raise InputError(
                f"{where} is a string column; give sep= to split it into labels "
                "(or store labels as a list column)"
            )
        arr = pc.split_pattern(arr, pattern=sep)
    elif sep is not None:
        raise InputError(f"{where} is not a string column ({arr.type}); sep= does not apply")
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise InputError(
            f"{where} must be a list column or a delimited string column, found {arr.type}"
        )
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(arr)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths.astype(np.int64))
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.utf8_trim_whitespace(values)
        keep = pc.and_(pc.is_valid(values), pc.not_equal(values, ""))
    else:
        keep = pc.is_valid(values)
    keep_np = pc.fill_null(keep, False).to_numpy(zero_copy_only=False)
    if not keep_np.all():
        values = values.filter(pa.array(keep_np))
        rows = rows[keep_np]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return offsets, values


class RepeatFactorIterableDataset(IterableDataset):
    """Repeat-factor sampling as a stream over Parquet shards.

    Parameters
    ----------
    source : path, folder or list of paths
        Parquet files; a folder is searched recursively in sorted order (what
        ``mlbalance resample`` or ``split`` wrote). The global row order is the files'
        order, then row order within each file.
    threshold : float, optional
        ``t`` in (0, 1], as in :func:`~mlbalance.samplers.repeat_factors`. The label
        frequencies come from a first pass over the label column only (cheap).
        Required unless ``factors`` is given.
    power, max_repeat
        As in :func:`~mlbalance.samplers.repeat_factors`.
    factors : 1-D array of float, optional
        Precomputed per-row factors in the global row order (then no first pass).
    label_column : str, optional
        The label column: a list column of strings or ints, or with ``sep`` a delimited
        string column. Default: the column (and separator) mlbalance stored in the first
        file's metadata, else ``"labels"``.
    sep : str, optional
        Label separator of a string label column.
    columns : list of str, optional
        Columns to emit; default all.
    shuffle_buffer : int, default 10000
        Rows held in the shuffle buffer per worker; 0 or 1 = no shuffling (rows come in
        file order, the row groups in a per-epoch shuffled order).
    seed : int, default 0
        Same on every rank.
    num_replicas, rank : int, optional
        World size and rank; default from ``torch.distributed`` when initialised.
    index_key : str, optional
        When given, each emitted row (a dict) also carries its global row index under
        this key.

    Notes
    -----
    * Each epoch the row groups are shuffled (from ``(seed, epoch)``) and dealt to the
      ``num_replicas * num_workers`` readers, each to the reader with the fewest rows so
      far; every row is emitted by exactly one reader, so none is duplicated or lost. With
      fewer than 4 row groups per reader, row groups are cut into row slices so every
      reader gets work; a reader still reads (decodes) its slice's whole row group, so for
      large data write shards with many row groups (e.g. ``row_group_size``).
    * A row group's stochastic rounding is drawn from ``(seed, epoch, row group)``, so the
      multiset of rows in an epoch does not depend on the number of ranks or workers:
      :meth:`epoch_counts` returns it without reading the data columns.
    * Unlike the map-style samplers, ranks emit different numbers of rows (the rows are
      not padded): stop every rank at the same step count, or use
      ``torch.distributed.algorithms.join.Join``, with DistributedDataParallel.
    * Call :meth:`set_epoch` before each epoch's DataLoader iterator is created (with
      ``persistent_workers=False``, the default, workers get a fresh copy each epoch).
    * Shuffling is local: a row moves at most about ``shuffle_buffer`` positions from
      where its row group put it (as in webdataset and torchdata's shuffle buffers).
    """

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        threshold: float | None = None,
        power: float = 0.5,
        max_repeat: float | None = None,
        *,
        factors: Any = None,
        label_column: str | None = None,
        sep: str | None = None,
        columns: Sequence[str] | None = None,
        shuffle_buffer: int = 10_000,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        index_key: str | None = None,
    ) -> None:
        super().__init__()
        self.files = parquet_files(source)
        self.seed = _check_seed(seed)
        self.num_replicas, self.rank = default_replicas(num_replicas, rank)
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int):
            raise ParameterError(f"shuffle_buffer must be an int, got {shuffle_buffer!r}")
        if shuffle_buffer < 0:
            raise ParameterError(f"Invalid shuffle_buffer {shuffle_buffer}, should be >= 0")
        self.shuffle_buffer = shuffle_buffer
        if label_column is None and factors is None:
            label_column, stored_sep = _spec_from_metadata(self.files[0])
            sep = stored_sep if sep is None else sep
        self.label_column = label_column or "labels"
        self.sep = sep
        self.columns = None if columns is None else list(columns)
        self.index_key = index_key
        self.epoch = 0
        self.units = self._list_units()
        self.n_rows = sum(u.n_rows for u in self.units)
        if self.n_rows == 0:
            raise InputError(f"{self.files[0]}: the Parquet files have no rows")
        self.factors: np.ndarray | None = None
        self._row_factors: np.ndarray | None = None
        self.vocabulary: pa.Array | None = None
        self.label_factors: np.ndarray | None = None
        if factors is not None:
            if threshold is not None:
                raise ParameterError("give either factors or a threshold, not both")
            f = _check_factors(factors)
            if f.size != self.n_rows:
                raise ParameterError(
                    f"factors has {f.size} entries but the Parquet files have {self.n_rows} rows"
                )
            self.factors = f
        else:
            if threshold is None:
                raise ParameterError(
                    "RepeatFactorIterableDataset needs a threshold in (0, 1] or factors"
                )
            vocab, counts = self._count_labels()
            self.vocabulary = vocab
            self.label_factors = label_repeat_factors(
                counts, self.n_rows, threshold, power, max_repeat
            )
        self.threshold, self.power, self.max_repeat = threshold, power, max_repeat

    # --- first pass -------------------------------------------------------------------
    def _list_units(self) -> list[_Unit]:
        units: list[_Unit] = []
        start = 0
        for i, path in enumerate(self.files):
            try:
                meta = pq.ParquetFile(path).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{path}: cannot read as Parquet: {exc}") from None
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if n:
                    units.append(_Unit(len(units), i, g, start, n))
                    start += n
        return units

    def _read_labels(self, pf: pq.ParquetFile, unit: _Unit) -> tuple[np.ndarray, pa.Array]:
        path = self.files[unit.file]
        if self.label_column not in pf.schema_arrow.names:
            raise InputError(f"{path}: no label column {self.label_column!r}")
        table = pf.read_row_group(unit.row_group, columns=[self.label_column])
        return self._entries(table.column(0), unit)

    def _entries(self, column: pa.ChunkedArray, unit: _Unit) -> tuple[np.ndarray, pa.Array]:
        where = f"{self.files[unit.file]}: column {self.label_column!r}"
        return _label_entries(column, self.sep, where)

    def _count_labels(self) -> tuple[pa.Array, np.ndarray]:
        """One pass over the label column: the vocabulary (sorted) and rows per label."""
        counts: dict[Any, int] = {}
        pf, open_file = None, -1
        for unit in progress(self.units, desc="counting labels", unit="row group"):
            if unit.file != open_file:
                pf, open_file = pq.ParquetFile(self.files[unit.file]), unit.file
            assert pf is not None
            offsets, values = self._read_labels(pf, unit)
            if len(values) == 0:
                continue
            # a label repeated within a row counts once for that row
            rows = np.repeat(np.arange(unit.n_rows), np.diff(offsets))
            enc = pc.dictionary_encode(values)
            if isinstance(enc, pa.ChunkedArray):
                enc = enc.combine_chunks()
            ids = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            k = len(enc.dictionary)
            pairs = np.unique(rows * k + ids)
            per = np.bincount(pairs % k, minlength=k)
            for name, c in zip(enc.dictionary.to_pylist(), per.tolist()):
                counts[name] = counts.get(name, 0) + c
        names = sorted(counts)
        return pa.array(names), np.array([counts[n] for n in names], dtype=np.int64)

    # --- factors and counts ---------------------------------------------------------
    def _unit_factors(
        self, pf: pq.ParquetFile, unit: _Unit, labels: pa.ChunkedArray | None = None
    ) -> np.ndarray:
        """Factors of a row group's rows; ``labels`` is its label column when already read."""
        if self.factors is not None:
            return self.factors[unit.start : unit.start + unit.n_rows]
        assert self.vocabulary is not None and self.label_factors is not None
        if labels is None:
            offsets, values = self._read_labels(pf, unit)
        else:
            offsets, values = self._entries(labels, unit)
        out = np.ones(unit.n_rows, dtype=np.float64)
        if len(values) and len(self.vocabulary):
            ids = pc.fill_null(pc.index_in(values, value_set=self.vocabulary), -1)
            idx = ids.to_numpy(zero_copy_only=False)
            vals = np.where(idx >= 0, self.label_factors[np.maximum(idx, 0)], 1.0)
            has = np.diff(offsets) > 0
            out[has] = np.maximum.reduceat(vals, offsets[:-1][has])
        return out

    def _unit_counts(self, factors: np.ndarray, unit: _Unit, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, epoch, _UNIT_ROUND, unit.uid])
        )
        return stochastic_round(factors, rng)

    def row_factors(self) -> np.ndarray:
        """Every row's repeat factor, in the global row order.

        Reads the label column once and keeps the result (8 bytes per row); iterating the
        data set does not need it.
        """
        if self.factors is not None:
            return self.factors
        if self._row_factors is None:
            parts = []
            for unit in self.units:
                parts.append(self._unit_factors(pq.ParquetFile(self.files[unit.file]), unit))
            self._row_factors = np.concatenate(parts)
        return self._row_factors

    @property
    def expected_length(self) -> float:
        """Expected rows per epoch over all ranks and workers (the sum of the factors)."""
        return float(self.row_factors().sum())

    def epoch_counts(self, epoch: int | None = None) -> np.ndarray:
        """How many times each row (global order) is emitted in ``epoch``, all readers together."""
        e = self.epoch if epoch is None else _check_epoch(epoch)
        factors = self.row_factors()
        return np.concatenate(
            [self._unit_counts(factors[u.start : u.start + u.n_rows], u, e) for u in self.units]
        )

    # --- distribution ---------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (decides the row-group order, the rounding and the shuffle)."""
        self.epoch = _check_epoch(epoch)

    def pieces(self, n_readers: int) -> list[tuple[_Unit, int, int]]:
        """The work items for ``n_readers`` readers: ``(row group, lo, hi)`` row ranges.

        Whole row groups when there are at least :data:`PIECES_PER_READER` per reader;
        otherwise each row group is cut into equal slices so that every reader gets work.
        """
        per_group = max(1, -(-PIECES_PER_READER * n_readers // len(self.units)))
        out: list[tuple[_Unit, int, int]] = []
        for unit in self.units:
            k = min(per_group, unit.n_rows)
            bounds = np.linspace(0, unit.n_rows, k + 1).round().astype(int).tolist()
            out.extend((unit, lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo)
        return out

    def assignment(self, epoch: int, n_readers: int) -> list[list[tuple[_Unit, int, int]]]:
        """The pieces (:meth:`pieces`) each of ``n_readers`` readers gets in ``epoch``, in order.

        Reader ``rank * num_workers + worker_id`` reads list ``[that]``. The pieces are
        shuffled from ``(seed, epoch)`` and dealt, each to the reader with the fewest rows so
        far. Every row of the data set is in exactly one piece of one list.
        """
        pieces = self.pieces(n_readers)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, _UNIT_ORDER]))
        order = rng.permutation(len(pieces))
        heap = [(0, r) for r in range(n_readers)]
        out: list[list[tuple[_Unit, int, int]]] = [[] for _ in range(n_readers)]
        for i in order.tolist():
            load, r = heapq.heappop(heap)
            _, lo, hi = pieces[i]
            out[r].append(pieces[i])
            heapq.heappush(heap, (load + hi - lo, r))
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        n_workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        reader = self.rank * n_workers + worker
        mine = self.assignment(self.epoch, self.num_replicas * n_workers)[reader]
        return self._stream(mine, self.epoch, reader)

    def _stream(
        self, units: list[tuple[_Unit, int, int]], epoch: int, reader: int
    ) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, _BUFFER, reader]))
        size = self.shuffle_buffer
        buffer: list[dict[str, Any]] = []
        draws = np.empty(0, dtype=np.int64)
        used = 0
        for row in self._rows(units, epoch):
            if size <= 1:
                yield row
                continue
            if len(buffer) < size:
                buffer.append(row)
                continue
            if used == draws.size:
                draws, used = rng.integers(0, size, _DRAW_BLOCK), 0
            j = int(draws[used])
            used += 1
            out, buffer[j] = buffer[j], row
            yield out
        for j in rng.permutation(len(buffer)).tolist():
            yield buffer[j]

    def _rows(self, units: list[tuple[_Unit, int, int]], epoch: int) -> Iterator[dict[str, Any]]:
        """Each row of the pieces as a dict, repeated by its count for ``epoch``.

        The rounding is drawn for the whole row group (from ``(seed, epoch, row group)``)
        and the piece keeps its slice, so the epoch does not depend on how groups are cut.
        """
        pf, open_file = None, -1
        for unit, lo, hi in units:
            path = self.files[unit.file]
            if unit.file != open_file:
                pf, open_file = pq.ParquetFile(path), unit.file
            assert pf is not None
            if self.columns is not None:
                missing = [c for c in self.columns if c not in pf.schema_arrow.names]
                if missing:
                    raise InputError(f"{path}: no column {missing[0]!r}")
            read = self.columns
            need_labels = self.factors is None
            if read is not None and need_labels and self.label_column not in read:
                read = [*read, self.label_column]
            if need_labels and self.label_column not in pf.schema_arrow.names:
                raise InputError(f"{path}: no label column {self.label_column!r}")
            table = pf.read_row_group(unit.row_group, columns=read)
            labels = table.column(self.label_column) if need_labels else None
            counts = self._unit_counts(self._unit_factors(pf, unit, labels), unit, epoch)
            counts[:lo] = 0
            counts[hi:] = 0
            keep = np.flatnonzero(counts)
            if keep.size == 0:
                continue
            if self.columns is not None:
                table = table.select(self.columns)
            table = table.take(pa.array(keep))
            for k, row in zip(keep.tolist(), table.to_pylist()):
                if self.index_key is not None:
                    row[self.index_key] = unit.start + k
                yield row
                for _ in range(int(counts[k]) - 1):
                    yield dict(row)

    def __repr__(self) -> str:
        return (
            f"RepeatFactorIterableDataset(files={len(self.files)}, row_groups={len(self.units)}, "
            f"n_rows={self.n_rows}, seed={self.seed}, num_replicas={self.num_replicas}, "
            f"rank={self.rank})"
        )
