"""Streaming repeat-factor sampling over Parquet shards that do not fit in memory.

:class:`RepeatFactorIterableDataset` reads Parquet files (a folder of shards such as
``mlbalance resample`` or ``split`` write, or a list of files) row group by row group,
emits each row ``floor(r) + Bernoulli(r - floor(r))`` times through a seeded shuffle
buffer, and splits the row groups between ranks and DataLoader workers so that every row
of the data set belongs to exactly one of them. Labels are parsed by mlbalance's one label
parser (:mod:`mlbalance.io`), so every layout mlbalance reads works (a list of names or ids, a
delimited string, 0/1 columns, the id + names files of mlbalance 0.1), and each row carries
its labels as a multi-hot tensor; :func:`collate_rows` batches rows for a DataLoader.
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
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mlbalance._progress import progress
from mlbalance.errors import InputError, ParameterError
from mlbalance.io import LabelSpec
from mlbalance.io._collect import LabelCollector, add_table, label_columns, sort_labels
from mlbalance.io._parquet import open_parquet, parquet_errors
from mlbalance.io.readers import id_names, resolve_spec
from mlbalance.labels import LabelMatrix
from mlbalance.samplers._collate import collate_rows
from mlbalance.samplers._shard import default_replicas
from mlbalance.samplers.factors import label_repeat_factors, stochastic_round
from mlbalance.samplers.sampler import _check_epoch, _check_factors, _check_seed

__all__ = ["RepeatFactorIterableDataset", "collate_rows", "parquet_files"]

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


def _copy_row(row: dict[str, Any]) -> dict[str, Any]:
    """A repeated row: its own dict and label tensor (a consumer may change them in place)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in row.items()}


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
    spec : LabelSpec, optional
        Where the labels are (any layout :func:`mlbalance.io.read_labels` reads). Default:
        the layout and vocabulary stored in the first file's mlbalance metadata, else a list
        column ``labels``.
    label_column, sep : str, optional
        Shorthand for ``spec=LabelSpec(column=label_column, sep=sep)``.
    columns : list of str, optional
        Columns to emit; default every column but the label column(s).
    label_key : str or None, default "labels"
        Each row carries its labels under this key as a float32 multi-hot tensor of length
        ``len(label_names)``; None leaves them out (then, with ``factors``, the labels are
        never read).
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

    Attributes
    ----------
    label_names : tuple of str
        The label order of the multi-hot tensors: the stored vocabulary, else the labels
        seen, sorted (as :func:`mlbalance.io.read_labels` orders them).

    Notes
    -----
    * A row is a dict: the emitted columns as Python values, ``label_key`` the multi-hot
      tensor, ``index_key`` the global row index. :func:`collate_rows` makes a batch of them.
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
        spec: LabelSpec | None = None,
        label_column: str | None = None,
        sep: str | None = None,
        columns: Sequence[str] | None = None,
        label_key: str | None = "labels",
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
            raise ParameterError(
                f"shuffle_buffer must be an int, got {shuffle_buffer!r}", param="shuffle_buffer"
            )
        if shuffle_buffer < 0:
            raise ParameterError(
                f"Invalid shuffle_buffer {shuffle_buffer}, should be >= 0", param="shuffle_buffer"
            )
        self.shuffle_buffer = shuffle_buffer
        if spec is None and (label_column is not None or sep is not None):
            spec = LabelSpec(column=label_column or "labels", sep=sep)
        self.spec, stored = resolve_spec(self.files[0], spec, None)
        self.label_column, self.sep = self.spec.column, self.spec.sep
        self._id_names = id_names(self.files[0], self.spec, stored)
        self.columns = None if columns is None else list(columns)
        self.label_key = label_key
        self.index_key = index_key
        self.epoch = 0
        self.units = self._list_units()
        self.n_rows = sum(u.n_rows for u in self.units)
        if self.n_rows == 0:
            raise InputError(f"{self.files[0]}: the Parquet files have no rows")
        self.factors: np.ndarray | None = None
        self._row_factors: np.ndarray | None = None
        self.label_factors: np.ndarray | None = None
        self.label_names: tuple[str, ...] = tuple(stored or ())
        if factors is not None:
            if threshold is not None:
                raise ParameterError(
                    "give either factors or a threshold, not both", param=("factors", "threshold")
                )
            f = _check_factors(factors)
            if f.size != self.n_rows:
                raise ParameterError(
                    f"factors has {f.size} entries but the Parquet files have {self.n_rows} rows",
                    param="factors",
                )
            self.factors = f
            if label_key is not None and stored is None:
                self.label_names, _ = self._count_labels(None)
        else:
            if threshold is None:
                raise ParameterError(
                    "RepeatFactorIterableDataset needs a threshold in (0, 1] or factors",
                    param=("threshold", "factors"),
                )
            self.label_names, counts = self._count_labels(stored)
            self.label_factors = label_repeat_factors(
                counts, self.n_rows, threshold, power, max_repeat
            )
        self.threshold, self.power, self.max_repeat = threshold, power, max_repeat

    # --- first pass -------------------------------------------------------------------
    def _list_units(self) -> list[_Unit]:
        units: list[_Unit] = []
        start = 0
        for i, path in enumerate(self.files):
            meta = open_parquet(path).metadata
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if n:
                    units.append(_Unit(len(units), i, g, start, n))
                    start += n
        return units

    def _label_columns(self, pf: pq.ParquetFile, unit: _Unit) -> list[str]:
        return label_columns(self.files[unit.file], self.spec, pf.schema_arrow.names)

    def _labels(
        self, table: pa.Table, unit: _Unit, vocabulary: Sequence[str] | None
    ) -> LabelMatrix:
        """The labels of one row group's *table* (the one label parser, fixed vocabulary)."""
        path = self.files[unit.file]
        collector = LabelCollector(self.spec, str(path), vocabulary, self._id_names)
        add_table(collector, self.spec, table, self._label_columns_of(table, unit))
        return collector.finish()

    def _label_columns_of(self, table: pa.Table, unit: _Unit) -> list[str]:
        return label_columns(self.files[unit.file], self.spec, table.column_names)

    def _read_labels(
        self, pf: pq.ParquetFile, unit: _Unit, vocabulary: Sequence[str] | None
    ) -> LabelMatrix:
        cols = self._label_columns(pf, unit)
        with parquet_errors(self.files[unit.file]):
            table = pf.read_row_group(unit.row_group, columns=cols)
        return self._labels(table, unit, vocabulary)

    def _count_labels(self, stored: Sequence[str] | None) -> tuple[tuple[str, ...], np.ndarray]:
        """One pass over the label column(s): the vocabulary and the rows per label.

        The vocabulary is the stored one plus any label it lacks, sorted (as
        :func:`mlbalance.io.read_labels` orders them); a label repeated within a row counts
        once for that row.
        """
        names: list[str] = list(stored or ())
        counts = np.zeros(len(names), dtype=np.int64)
        pf, open_file = None, -1
        for unit in progress(self.units, desc="counting labels", unit="row group"):
            if unit.file != open_file:
                pf, open_file = open_parquet(self.files[unit.file]), unit.file
            assert pf is not None
            m = self._read_labels(pf, unit, names)
            names = list(m.names)
            counts = np.concatenate([counts, np.zeros(len(names) - len(counts), np.int64)])
            counts += m.counts()
        given = len(stored or ())
        unseen = names[given:]
        if not self.spec.is_indicator:  # 0/1 columns: the column order is the vocabulary
            unseen = sort_labels(unseen, all_int=all(n.lstrip("-").isdigit() for n in unseen))
        order = [*names[:given], *unseen]
        position = {n: i for i, n in enumerate(names)}
        return tuple(order), counts[[position[n] for n in order]]

    # --- factors and counts ---------------------------------------------------------
    def _unit_factors(
        self, pf: pq.ParquetFile, unit: _Unit, labels: LabelMatrix | None = None
    ) -> np.ndarray:
        """Factors of a row group's rows; ``labels`` are its labels when already read."""
        if self.factors is not None:
            return self.factors[unit.start : unit.start + unit.n_rows]
        assert self.label_factors is not None
        if labels is None:
            labels = self._read_labels(pf, unit, self.label_names)
        self._check_vocabulary(labels, unit)
        m = labels.matrix
        out = np.ones(unit.n_rows, dtype=np.float64)
        if m.nnz:
            vals = self.label_factors[m.indices]
            has = np.diff(m.indptr) > 0
            out[has] = np.maximum.reduceat(vals, m.indptr[:-1][has])
        return out

    def _check_vocabulary(self, labels: LabelMatrix, unit: _Unit) -> None:
        if labels.n_labels != len(self.label_names):
            extra = list(labels.names[len(self.label_names) :])[:5]
            raise InputError(
                f"{self.files[unit.file]}: labels {extra} are not in the vocabulary of the "
                "first pass (did the files change?)"
            )

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
                parts.append(self._unit_factors(open_parquet(self.files[unit.file]), unit))
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
        need_labels = self.factors is None or self.label_key is not None
        for unit, lo, hi in units:
            path = self.files[unit.file]
            if unit.file != open_file:
                pf, open_file = open_parquet(path), unit.file
            assert pf is not None
            names = pf.schema_arrow.names
            label_cols = self._label_columns(pf, unit) if need_labels else []
            emit = (
                self.columns
                if self.columns is not None
                else [c for c in names if c not in label_cols]
            )
            missing = [c for c in emit if c not in names]
            if missing:
                raise InputError(f"{path}: no column {missing[0]!r}")
            if self.label_key is not None and self.label_key in emit:
                raise ParameterError(
                    f"{path}: column {self.label_key!r} would be replaced by the multi-hot "
                    "labels; choose another label_key",
                    param="label_key",
                )
            with parquet_errors(path):
                table = pf.read_row_group(
                    unit.row_group, columns=list(dict.fromkeys([*emit, *label_cols]))
                )
            labels = self._labels(table, unit, self.label_names) if need_labels else None
            counts = self._unit_counts(self._unit_factors(pf, unit, labels), unit, epoch)
            counts[:lo] = 0
            counts[hi:] = 0
            keep = np.flatnonzero(counts)
            if keep.size == 0:
                continue
            if labels is not None:
                self._check_vocabulary(labels, unit)
            rows = table.select(emit).take(pa.array(keep)).to_pylist()
            for k, row in zip(keep.tolist(), rows):
                if self.label_key is not None and labels is not None:
                    row[self.label_key] = self._multi_hot(labels, k)
                if self.index_key is not None:
                    row[self.index_key] = unit.start + k
                yield row
                for _ in range(int(counts[k]) - 1):
                    yield _copy_row(row)

    def _multi_hot(self, labels: LabelMatrix, row: int) -> torch.Tensor:
        m = labels.matrix
        vec = torch.zeros(len(self.label_names), dtype=torch.float32)
        vec[torch.from_numpy(m.indices[m.indptr[row] : m.indptr[row + 1]].astype(np.int64))] = 1.0
        return vec

    def __repr__(self) -> str:
        return (
            f"RepeatFactorIterableDataset(files={len(self.files)}, row_groups={len(self.units)}, "
            f"n_rows={self.n_rows}, seed={self.seed}, num_replicas={self.num_replicas}, "
            f"rank={self.rank})"
        )
