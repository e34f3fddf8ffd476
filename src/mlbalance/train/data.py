"""The data path of training: read a split, tokenise on the fly, pad dynamically, batch.

A split (Parquet file or folder of shards from ``split`` / ``resample``, or CSV/TSV/JSONL) is
read once into Arrow memory: only the text (or embedding) column and the labels, so a million
short texts cost about their UTF-8 size. Batches are cut from it by index — the samplers
(repeat-factor, class-aware, distributed) choose the indices — and tokenised when they are
fetched, with the model's fast (Rust) tokenizer and padding to the longest row of the batch,
the behaviour of transformers' ``DataCollatorWithPadding``. With ``num_workers > 0`` the
tokenising runs in DataLoader worker processes.

With numeric features there is no tokenising: a batch is rows of one float32 matrix. They are
an ``embedding`` column (fixed-length float lists, e.g. from ``mlbalance embed`` or MLSMOTE on
embeddings), or one numeric column per feature (``feature_columns`` / ``feature_prefix``, or a
MULAN ARFF file's attributes), read by :mod:`mlbalance.io.features`.
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
import scipy.sparse as sp
import torch

from mlbalance._threads import prefetch
from mlbalance.errors import InputError, ParameterError
from mlbalance.io.features import FeatureSpec, embeddings_matrix, feature_columns, feature_matrix
from mlbalance.labels import LabelMatrix

__all__ = [
    "EmbeddingBatches",
    "SplitData",
    "TextBatches",
    "align_labels",
    "batch_indices",
    "describe_paths",
    "detect_embedding",
    "embeddings_matrix",
    "load_split",
    "loader",
    "read_table",
    "text_array",
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
    features : mlbalance.io.FeatureSpec or None
        Where *embeddings* came from, resolved: the embedding column, or the per-feature
        columns in order (a prefix or an ARFF file's attributes named one by one).
    """

    labels: LabelMatrix
    texts: pa.Array | None
    embeddings: np.ndarray | None
    source: str
    stats: dict[str, int] = field(default_factory=dict)
    spec: Any = None
    features: FeatureSpec | None = None

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


def describe_paths(path: str | Sequence[str]) -> str:
    """A split's source for messages: the path, or ``a + b + c`` for several files."""
    return path if isinstance(path, str) else " + ".join(str(p) for p in path)


def load_split(
    path: str | Sequence[str],
    *,
    spec: Any = None,
    vocabulary: Sequence[str] | None = None,
    text_column: str = "text",
    embedding_column: str | None = None,
    features: FeatureSpec | None = None,
    training: bool = False,
) -> SplitData:
    """Read one split for training or evaluation.

    Parameters
    ----------
    path : str or sequence of str
        Parquet file or shard folder, CSV, TSV, JSONL or MULAN ARFF; several of them are read
        in order as one split (e.g. the training folds of a k-fold run), with one label
        vocabulary (the first file's, extended by labels the others add) and, for features,
        the columns the first file resolved.
    spec : mlbalance.io.LabelSpec, optional
        Label layout; default the one stored in mlbalance Parquet metadata.
    vocabulary : sequence of str, optional
        Label order (the training vocabulary for val/test). Labels it lacks are appended.
    text_column : str, default "text"
        The text column (ignored when features are read).
    embedding_column : str, optional
        Read this embedding column instead of text (``features=FeatureSpec(embedding_column=...)``).
    features : mlbalance.io.FeatureSpec, optional
        Read numeric features instead of text (:func:`mlbalance.io.features.feature_matrix`);
        an empty spec means a MULAN ARFF file's attributes.
    training : bool, default False
        A text column of numbers is refused with the hint to train a head on them.

    Returns
    -------
    SplitData
    """
    from mlbalance.io.readers import detect_format, read_dataset

    if not isinstance(path, (str, Path)):
        return _concat_splits(
            list(path), spec=spec, vocabulary=vocabulary, text_column=text_column,
            embedding_column=embedding_column, features=features, training=training,
        )  # fmt: skip
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    if features is None and embedding_column:
        features = FeatureSpec(embedding_column=embedding_column)
    if features is not None:
        return _feature_split(path, spec, vocabulary, features)
    fmt = detect_format(path)
    if fmt == "arff":
        raise InputError(
            f"{path}: no text column {text_column!r}: a MULAN ARFF file holds numeric features, "
            "which a head on features reads"
        )
    ds = read_dataset(path, spec, vocabulary=vocabulary, columns=[text_column])
    if text_column not in ds.table.column_names:
        shown = ", ".join(ds.table.column_names[:12])
        raise InputError(f"{path}: no column {text_column!r} (columns: {shown})")
    texts = text_array(ds.table.column(text_column), str(path), text_column, training=training)
    stats = {"rows": ds.n_rows}
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


def _concat_splits(paths: list[str], *, vocabulary: Any, **kw: Any) -> SplitData:
    """Several files read as one split (see :func:`load_split`)."""
    if not paths:
        raise ParameterError("no files to read as a split", param="train")
    parts: list[SplitData] = []
    for p in paths:
        part = load_split(p, vocabulary=vocabulary, **kw)
        vocabulary = list(part.labels.names)  # the labels a part adds come after the others'
        if part.features is not None:
            kw["features"] = part.features  # every part reads the first one's columns
        parts.append(part)
    names = tuple(vocabulary)
    matrix = sp.vstack([p.labels.with_names(names).matrix for p in parts], format="csr")
    first = parts[0]
    texts = None
    if first.texts is not None:
        chunks = [p.texts for p in parts if p.texts is not None]
        if len({c.type for c in chunks}) > 1:  # string in one file, large_string in another
            chunks = [c.cast(pa.large_string()) for c in chunks]
        texts = pa.concat_arrays(chunks)
    embeddings = None
    if first.embeddings is not None:
        dims = {p.embeddings.shape[1] for p in parts if p.embeddings is not None}
        if len(dims) > 1:
            raise InputError(f"{describe_paths(paths)}: the files have {sorted(dims)} features")
        embeddings = np.concatenate([p.embeddings for p in parts if p.embeddings is not None])
    stats = {k: sum(p.stats.get(k, 0) for p in parts) for k in first.stats}
    return SplitData(
        LabelMatrix(matrix, names), texts, embeddings, describe_paths(paths), stats,
        first.spec, first.features,
    )  # fmt: skip


def text_array(
    column: pa.ChunkedArray | pa.Array, source: str, name: str, *, training: bool = False
) -> pa.Array:
    """A string column as one chunk, nulls as ``""``.

    Raises
    ------
    InputError
        The column does not hold strings.
    ParameterError
        With *training*, the column holds numbers: the message says to name numeric columns as
        features (``feature_columns``, ``feature_prefix``) or a list column as an embedding.
    """
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return pc.fill_null(column, "").combine_chunks()
    problem = f"{source}: text column {name!r} holds {typ}, not strings"
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
    listed = (
        pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ) or pa.types.is_large_list(typ)
    )
    if training and numeric:
        raise ParameterError(
            f"{problem}; to train a head on numeric columns, name them with feature_columns "
            f"(e.g. {name},...) or feature_prefix",
            param=("feature_columns", "feature_prefix"),
        )
    if training and listed:
        raise ParameterError(
            f"{problem}; to train a head on a list column of numbers, name it with "
            "embedding_column",
            param="embedding_column",
        )
    raise InputError(problem)


def _feature_split(
    path: str, spec: Any, vocabulary: Sequence[str] | None, features: FeatureSpec
) -> SplitData:
    """A split whose inputs are numeric features (an embedding column or per-feature columns)."""
    from mlbalance.io.readers import detect_format, read_dataset, resolve_spec

    fmt = detect_format(path)
    if features.is_empty and fmt != "arff":
        raise ParameterError(
            f"{path}: name the features: embedding_column, feature_columns or feature_prefix",
            param=("embedding_column", "feature_columns", "feature_prefix"),
        )
    want: list[str] | None = None
    names = _schema_names(path)
    if names is not None:  # Parquet: read only the feature columns (and the labels)
        use, _ = resolve_spec(path, spec, None)
        want = feature_columns(names, features, exclude=use.label_columns(names), source=str(path))
    ds = read_dataset(path, spec, vocabulary=vocabulary, columns=want)
    names = ds.table.column_names
    cols = want or feature_columns(
        names, features, exclude=ds.spec.label_columns(names), source=str(path)
    )
    resolved = features if features.embedding_column else FeatureSpec(feature_columns=tuple(cols))
    x = feature_matrix(ds.table, resolved, source=str(path))
    stats = {"rows": ds.n_rows}
    return SplitData(ds.labels, None, x, str(path), stats, ds.spec, resolved)


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
    path: str,
    columns: Sequence[str] | None = None,
    *,
    header_names: Sequence[str] | None = None,
    encoding: str | None = None,
) -> pa.Table:
    """Every column of a Parquet file/folder, CSV, TSV or JSONL, with no label parsing.

    :func:`mlbalance.io.read_table`: CSV/TSV are parsed as the label readers parse them.
    """
    from mlbalance.io import read_table as io_read_table

    return io_read_table(path, columns=columns, header_names=header_names, encoding=encoding)


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
