"""The data path of training: read a split, tokenise on the fly, pad dynamically, batch.

A split (Parquet file or folder of shards from ``split`` / ``resample``, or CSV/TSV/JSONL) is
read once into Arrow memory: only the text (or embedding) column and the labels, so a million
short texts cost about their UTF-8 size. Batches are cut from it by index — the samplers
(repeat-factor, class-aware, distributed) choose the indices — and tokenised when they are
fetched, with the model's fast (Rust) tokenizer and padding to the longest row of the batch,
the behaviour of transformers' ``DataCollatorWithPadding``. With ``num_workers > 0`` the
tokenising runs in DataLoader worker processes.

With an ``embedding`` column (fixed-length float lists, e.g. from ``mlbalance embed`` or
MLSMOTE on embeddings) there is no tokenising: a batch is rows of one float32 matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from mlbalance._threads import prefetch
from mlbalance.errors import InputError
from mlbalance.io.features import embeddings_matrix
from mlbalance.labels import LabelMatrix

__all__ = [
    "EmbeddingBatches",
    "SplitData",
    "TextBatches",
    "align_labels",
    "batch_indices",
    "detect_embedding",
    "embeddings_matrix",
    "load_split",
    "loader",
    "read_table",
]


@dataclass
class SplitData:
    """One split in memory: labels plus the text or embedding column.

    Attributes
    ----------
    labels : LabelMatrix
        Labels in the vocabulary order (a split read with a given vocabulary may have extra
        labels appended: the ones that vocabulary does not know).
    texts : pyarrow.Array or None
        The text column (nulls replaced by ``""``), one chunk, for fast ``take``.
    embeddings : numpy.ndarray or None
        ``(n_rows, dim)`` float32.
    source : str
        The file or folder (for messages).
    stats : dict
        ``rows``, ``empty_text`` (empty or missing texts).
    spec : mlbalance.io.LabelSpec or None
        How the labels were read (None for unlabelled data).
    """

    labels: LabelMatrix
    texts: pa.Array | None
    embeddings: np.ndarray | None
    source: str
    stats: dict[str, int] = field(default_factory=dict)
    spec: Any = None

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return self.labels.n_rows


def _schema_names(path: str) -> list[str] | None:
    from mlbalance.io.readers import detect_format, parquet_files

    try:
        if detect_format(path) != "parquet":
            return None
        import pyarrow.parquet as pq

        return list(pq.read_schema(parquet_files(path)[0]).names)
    except (OSError, pa.ArrowInvalid):
        return None


def detect_embedding(path: str, embedding_column: str) -> bool:
    """True when the Parquet data at *path* has the column *embedding_column*."""
    names = _schema_names(path)
    return names is not None and embedding_column in names


def load_split(
    path: str,
    *,
    spec: Any = None,
    vocabulary: Sequence[str] | None = None,
    text_column: str = "text",
    embedding_column: str | None = None,
) -> SplitData:
    """Read one split for training or evaluation.

    Parameters
    ----------
    path : str
        Parquet file or shard folder, CSV, TSV or JSONL.
    spec : mlbalance.io.LabelSpec, optional
        Label layout; default the one stored in mlbalance Parquet metadata.
    vocabulary : sequence of str, optional
        Label order (the training vocabulary for val/test). Labels it lacks are appended.
    text_column : str, default "text"
        The text column (ignored with *embedding_column*).
    embedding_column : str, optional
        Read this embedding column instead of text.

    Returns
    -------
    SplitData
    """
    from mlbalance.io.readers import read_dataset

    column = embedding_column or text_column
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    ds = read_dataset(path, spec, vocabulary=vocabulary, columns=[column])
    if column not in ds.table.column_names:
        raise InputError(
            f"{path}: no column {column!r} (columns: {', '.join(ds.table.column_names[:12])})"
        )
    stats = {"rows": ds.n_rows}
    if embedding_column:
        emb = embeddings_matrix(ds.table.column(column), str(path), column)
        return SplitData(ds.labels, None, emb, str(path), stats, ds.spec)
    col = ds.table.column(column)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise InputError(f"{path}: text column {column!r} holds {col.type}, not strings")
    texts = pc.fill_null(col, "").combine_chunks()
    stats["empty_text"] = int(
        pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)).as_py() or 0
    )
    if stats["empty_text"]:
        warnings.warn(
            f"{path}: {stats['empty_text']} rows have empty or missing text (kept: "
            "they are read as an empty string)",
            stacklevel=2,
        )
    return SplitData(ds.labels, texts, None, str(path), stats, ds.spec)


def align_labels(split: SplitData, names: Sequence[str]) -> tuple[Any, dict[str, int]]:
    """The split's labels restricted to *names* (the model's), and the labels it has beyond.

    A split read with ``vocabulary=names`` carries labels the vocabulary lacks as extra columns
    after it; they are returned as ``{name: rows}`` and left out.

    Returns
    -------
    y : scipy.sparse.csr_matrix
        ``(rows, len(names))`` 0/1.
    extra : dict of str to int
        Labels beyond *names* that occur, with their row counts.
    """
    n = len(names)
    got = list(split.labels.names)
    if got[:n] != list(names):
        raise InputError(
            f"{split.source}: label vocabulary does not start with the model's "
            "labels (read it with the model's vocabulary)"
        )
    matrix = split.labels.matrix.tocsr()
    extra: dict[str, int] = {}
    if len(got) > n:
        counts = np.asarray(matrix[:, n:].sum(axis=0)).ravel()
        extra = {name: int(c) for name, c in zip(got[n:], counts, strict=True) if c > 0}
    return matrix[:, :n].tocsr(), extra


def read_table(
    path: str, columns: Sequence[str] | None = None, *, header_names: Sequence[str] | None = None
) -> pa.Table:
    """Every column of a Parquet file/folder, CSV, TSV or JSONL, with no label parsing.

    :func:`mlbalance.io.read_table`: CSV/TSV are parsed as the label readers parse them.
    """
    from mlbalance.io import read_table as io_read_table

    return io_read_table(path, columns=columns, header_names=header_names)


class TextBatches(torch.utils.data.Dataset):
    """Batches by index list: tokenised on fetch, padded to the batch's longest row.

    ``batches[[3, 17, 5]]`` returns ``{"input_ids", "attention_mask", "labels",
    "n_truncated", "index"}`` (tensors). Used with ``DataLoader(..., sampler=<lists of
    indices>, batch_size=None)``.

    Parameters
    ----------
    texts : pyarrow.Array
        Strings.
    labels : scipy.sparse.csr_matrix or None
        0/1 labels; None for prediction.
    tokenizer : transformers fast tokenizer
        Its Rust backend does the work (truncation to *max_length*, special tokens).
    max_length : int
        Tokens per row, special tokens included.
    """

    def __init__(self, texts: pa.Array, labels: Any, tokenizer: Any, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.texts = texts
        self.labels = labels
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.enable_truncation(max_length=max_length)
        self.backend = backend
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.token_type = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self.max_length = max_length
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets we never use
        self._encode = (
            "encode_batch_fast" if hasattr(backend, "encode_batch_fast") else "encode_batch"
        )

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        texts = self.texts.take(pa.array(idx)).to_pylist()
        encodings = getattr(self.backend, self._encode)(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        truncated = 0
        for i, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[i, :n] = enc.ids
            mask[i, :n] = 1
            truncated += bool(enc.overflowing)
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if self.token_type:
            out["token_type_ids"] = torch.zeros_like(out["input_ids"])
        out["n_truncated"] = torch.tensor(truncated)
        out["index"] = torch.from_numpy(idx)
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[idx].toarray().astype(np.float32))
        return out


class EmbeddingBatches(torch.utils.data.Dataset):
    """Batches of rows of an embedding matrix (same interface as :class:`TextBatches`)."""

    def __init__(self, embeddings: np.ndarray, labels: Any) -> None:
        self.embeddings = torch.from_numpy(embeddings)
        self.labels = labels

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def __getitem__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        out = {
            "embedding": self.embeddings[torch.from_numpy(idx)],
            "n_truncated": torch.tensor(0),
            "index": torch.from_numpy(idx),
        }
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[idx].toarray().astype(np.float32))
        return out


def batch_indices(
    order: Sequence[int] | np.ndarray, batch_size: int, *, drop_last: bool = False
) -> list[list[int]]:
    """Cut an index order into batches of *batch_size* (the last one shorter unless dropped)."""
    order = np.asarray(order, dtype=np.int64)
    stops = range(0, len(order), batch_size)
    batches = [order[i : i + batch_size].tolist() for i in stops]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def loader(
    dataset: torch.utils.data.Dataset,
    batches: Sequence[Sequence[int]],
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Generator[dict[str, torch.Tensor], None, None]:
    """Iterate the batches of *dataset* given as index lists, prepared ahead of the model.

    With ``num_workers=0`` one background thread prepares the next batches (the Rust tokenizer
    and the torch kernels release the GIL, so tokenising overlaps the forward/backward pass);
    with ``num_workers > 0``, DataLoader worker processes do. Order is always *batches*' order.
    """
    if num_workers == 0:
        yield from prefetch((dataset[b] for b in batches), depth=4, name="mlbalance-batches")
        return
    dl = torch.utils.data.DataLoader(
        dataset,
        sampler=batches,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4,
    )
    yield from dl
