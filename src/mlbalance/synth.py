"""The built-in synthetic long-tailed multilabel text dataset.

It stands in for our users' data in the demo, the benchmarks and many tests:

* **Label frequencies** fall along a smooth long tail from the head label (``head_fraction`` of
  the rows, default 15%) to the rarest labels (``tail_count`` rows, default 5). The curve is
  ``log count(x) = log head + (log tail - log head) * x ** gamma`` over the rank fraction
  ``x = rank / (labels - 1)``; ``gamma`` is solved so that the mean number of labels per row is
  ``cardinality`` (default 3). So at any size the head label holds > 10% of the rows and the
  rarest < 10 rows.
* **Co-occurrence**: labels belong to ``clusters`` topic clusters (label ``l`` to cluster
  ``l % clusters``, mixing head and tail); each row has a topic, and a label draws up to
  ``cluster_affinity`` of its rows from rows of its own topic, so labels of one cluster co-occur.
  Rows with no label arise naturally.
* **Text** whose words depend on the labels: each label owns ``words_per_label`` signature
  pseudo-words; a row's text holds two signature words of each of its labels (each kept with
  probability ``1 - word_noise``) among Zipf-distributed filler words, about 300 characters.
  A classifier can learn the labels from it; the rare labels are hard because they are rare.

Everything is drawn from one seeded generator (text per chunk from ``(seed, chunk)``), so the
same arguments give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from mlbalance.errors import ParameterError
from mlbalance.labels import LabelMatrix

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "label_names",
    "make_synthetic",
    "make_synthetic_table",
    "synth_label_matrix",
    "target_label_counts",
    "write_synthetic",
]

_SYLLABLES = np.array(
    [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
)


def label_names(n_labels: int) -> list[str]:
    """Names ``label_000``, ``label_001``, ... in frequency-rank order (the head first)."""
    width = max(3, len(str(n_labels - 1)))
    return [f"label_{i:0{width}d}" for i in range(n_labels)]


def _check(
    n_rows: int, n_labels: int, head_fraction: float, tail_count: int, cardinality: float
) -> None:
    if n_rows < 1:
        raise ParameterError(f"rows must be >= 1, got {n_rows}")
    if n_labels < 2:
        raise ParameterError(f"labels must be >= 2, got {n_labels}")
    if not 0 < head_fraction <= 1:
        raise ParameterError(f"head_fraction must be in (0, 1], got {head_fraction}")
    if tail_count < 1:
        raise ParameterError(f"tail_count must be >= 1, got {tail_count}")
    if not 0 < cardinality < n_labels:
        raise ParameterError(f"cardinality must be in (0, {n_labels}), got {cardinality}")


def target_label_counts(
    n_rows: int,
    n_labels: int = 500,
    *,
    head_fraction: float = 0.15,
    tail_count: int = 5,
    cardinality: float = 3.0,
) -> np.ndarray:
    """The intended rows per label (int64, head first) before duplicates are removed.

    ``gamma`` of the tail curve is found by bisection so that the counts sum to about
    ``cardinality * n_rows``; if even a flat curve cannot reach it, the flattest is used.
    """
    _check(n_rows, n_labels, head_fraction, tail_count, cardinality)
    head = max(float(tail_count), head_fraction * n_rows)
    tail = float(min(tail_count, head))
    x = np.arange(n_labels) / (n_labels - 1)

    def counts(gamma: float) -> np.ndarray:
        return np.exp(np.log(head) + (np.log(tail) - np.log(head)) * x**gamma)

    target = cardinality * n_rows
    lo, hi = 1e-3, 1e3  # sum(counts) grows with gamma
    for _ in range(100):
        mid = np.sqrt(lo * hi)
        if counts(mid).sum() < target:
            lo = mid
        else:
            hi = mid
    return np.maximum(1, np.round(counts(np.sqrt(lo * hi)))).astype(np.int64)


def synth_label_matrix(
    n_rows: int,
    n_labels: int = 500,
    seed: int = 0,
    *,
    head_fraction: float = 0.15,
    tail_count: int = 5,
    cardinality: float = 3.0,
    clusters: int = 50,
    cluster_affinity: float = 0.7,
) -> LabelMatrix:
    """A long-tailed label matrix with co-occurrence clusters (no text; fast at 10M rows).

    Parameters
    ----------
    n_rows, n_labels : int
        Size of the matrix.
    seed : int
        Seed of the one generator everything is drawn from.
    head_fraction : float, default 0.15
        Fraction of rows the head label is drawn for.
    tail_count : int, default 5
        Rows drawn for the rarest label.
    cardinality : float, default 3.0
        Target mean labels per row (duplicates drawn for a label count once, so the realised
        value is slightly lower).
    clusters : int, default 50
        Number of topic clusters of co-occurring labels.
    cluster_affinity : float, default 0.7
        Largest share of a label's rows drawn from rows of its own topic.

    Returns
    -------
    LabelMatrix
    """
    rng = np.random.default_rng(seed)
    return _label_matrix(
        rng, n_rows, n_labels, head_fraction, tail_count, cardinality, clusters, cluster_affinity
    )


def _label_matrix(
    rng: np.random.Generator,
    n_rows: int,
    n_labels: int,
    head_fraction: float,
    tail_count: int,
    cardinality: float,
    clusters: int,
    cluster_affinity: float,
) -> LabelMatrix:
    if clusters < 1:
        raise ParameterError(f"clusters must be >= 1, got {clusters}")
    if not 0 <= cluster_affinity <= 1:
        raise ParameterError(f"cluster_affinity must be in [0, 1], got {cluster_affinity}")
    counts = target_label_counts(
        n_rows,
        n_labels,
        head_fraction=head_fraction,
        tail_count=tail_count,
        cardinality=cardinality,
    )
    topic = rng.integers(0, clusters, size=n_rows)
    order = np.argsort(topic, kind="stable")
    bounds = np.searchsorted(topic[order], np.arange(clusters + 1))
    row_parts, label_parts = [], []
    for label, count in enumerate(counts):
        c = label % clusters
        members = order[bounds[c] : bounds[c + 1]]
        n_topic = int(min(count * cluster_affinity, 0.5 * members.size))
        in_topic = members[rng.integers(0, members.size, size=n_topic)]
        anywhere = rng.integers(0, n_rows, size=int(count) - n_topic)
        rows = np.unique(np.concatenate([in_topic, anywhere]))
        row_parts.append(rows)
        label_parts.append(np.full(rows.size, label, dtype=np.int32))
    rows = np.concatenate(row_parts)
    cols = np.concatenate(label_parts)
    mat = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.uint8), (rows, cols)), shape=(n_rows, n_labels)
    )
    mat.sort_indices()
    return LabelMatrix(mat, tuple(label_names(n_labels)))


def _pseudo_words(rng: np.random.Generator, n: int, syllables: int) -> np.ndarray:
    """*n* distinct pronounceable pseudo-words of *syllables* syllables each."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        picks = rng.integers(0, _SYLLABLES.size, size=(2 * (n - len(words)) + 8, syllables))
        for row in _SYLLABLES[picks]:
            w = "".join(row)
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == n:
                    break
    return np.array(words, dtype=object)


def _texts(
    rng: np.random.Generator,
    labels: sp.csr_matrix,
    vocab: pa.Array,
    k: int,
    n_signature: int,
    filler_p: np.ndarray,
    words_per_row: int,
    word_noise: float,
) -> pa.Array:
    """One text per row: two signature words per label (kept with 1 - noise) plus filler.

    Works on integer word ids (label ``l`` owns ids ``l*k .. l*k+k-1``; filler ids follow) and
    turns them into strings once, with Arrow ``take`` and ``binary_join``.
    """
    n = labels.shape[0]
    per_row = np.diff(labels.indptr)
    lab = np.repeat(labels.indices.astype(np.int64), 2)
    sig = lab * k + rng.integers(0, k, size=lab.size)
    keep = rng.random(lab.size) >= word_noise
    sig_rows = np.repeat(np.arange(n), 2 * per_row)[keep]
    sig = sig[keep]
    sig_per_row = np.bincount(sig_rows, minlength=n)
    n_fill = np.maximum(4, words_per_row - sig_per_row)
    cdf = np.cumsum(filler_p)
    fill = n_signature + np.searchsorted(cdf, rng.random(int(n_fill.sum())) * cdf[-1])
    sizes = sig_per_row + n_fill
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    ids = np.empty(int(offsets[-1]), dtype=np.int64)
    ids[offsets[:-1][sig_rows] + _ranks(sig_per_row)] = sig
    fill_rows = np.repeat(np.arange(n), n_fill)
    ids[offsets[:-1][fill_rows] + sig_per_row[fill_rows] + _ranks(n_fill)] = fill
    ids = ids[_shuffle_within_rows(rng, sizes, offsets)]
    words = vocab.take(pa.array(ids))
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), words)
    return pc.binary_join(lists, " ")


def _shuffle_within_rows(
    rng: np.random.Generator, sizes: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """A gather index that shuffles each row's words, in O(total) time.

    For each row length a small bank of random permutations is drawn, and each row uses one of
    its length's permutations at random (64 per length: plenty of variety for synthetic text).
    """
    bank = 64
    max_size = int(sizes.max()) if sizes.size else 0
    lengths = np.unique(sizes)
    perms = np.zeros((max_size + 1, bank, max_size), dtype=np.int64)
    for s in lengths:
        perms[s, :, :s] = rng.permuted(np.tile(np.arange(s), (bank, 1)), axis=1)
    rows = np.repeat(np.arange(sizes.size), sizes)
    choice = rng.integers(0, bank, size=sizes.size)
    return offsets[:-1][rows] + perms[sizes[rows], choice[rows], _ranks(sizes)]


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each group of *sizes*, concatenated."""
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(total) - starts


def make_synthetic_table(
    n_rows: int = 10_000,
    n_labels: int = 500,
    seed: int = 0,
    *,
    text: bool = True,
    words_per_row: int = 40,
    words_per_label: int = 4,
    word_noise: float = 0.1,
    filler_words: int = 2000,
    chunk_rows: int = 250_000,
    **label_options: float,
) -> pa.Table:
    """The synthetic dataset as a pyarrow Table with columns ``id``, ``text``, ``labels``.

    Parameters
    ----------
    n_rows, n_labels, seed :
        Size and seed (see :func:`synth_label_matrix`, which takes ``label_options``).
    text : bool, default True
        Generate the text column (``False`` for label-only benchmarks).
    words_per_row : int, default 40
        Approximate words per text (about 300 characters).
    words_per_label : int, default 4
        Signature words owned by each label.
    word_noise : float, default 0.1
        Probability that a signature word is left out.
    filler_words : int, default 2000
        Size of the Zipf-distributed filler vocabulary shared by all labels.
    chunk_rows : int, default 250000
        Text is generated in chunks of this many rows to bound memory.

    Returns
    -------
    pyarrow.Table
        ``id`` (int64), ``text`` (string, if ``text``), ``labels`` (list of string).
    """
    rng = np.random.default_rng(seed)
    ym = _label_matrix(rng, n_rows, n_labels, **_label_kwargs(label_options))
    names = pa.array(ym.names, type=pa.string())
    label_col = pa.ListArray.from_arrays(
        pa.array(ym.matrix.indptr.astype(np.int64), type=pa.int64()),
        names.take(pa.array(ym.matrix.indices.astype(np.int32))),
    ).cast(pa.list_(pa.string()))
    columns = {"id": pa.array(np.arange(n_rows, dtype=np.int64))}
    if text:
        n_signature = n_labels * words_per_label
        vocab = pa.array(_pseudo_words(rng, n_signature + filler_words, 3), type=pa.string())
        p = 1.0 / np.arange(1, filler_words + 1)
        p /= p.sum()
        chunks = []
        for i, start in enumerate(range(0, n_rows, chunk_rows)):
            crng = np.random.default_rng([seed, i])
            part = ym.matrix[start : start + chunk_rows]
            chunks.append(
                _texts(
                    crng, part, vocab, words_per_label, n_signature, p, words_per_row, word_noise
                )
            )
        columns["text"] = pa.chunked_array(chunks, type=pa.string())
    columns["labels"] = label_col
    return pa.table(columns)


def _label_kwargs(options: dict[str, float]) -> dict[str, Any]:
    allowed = {
        "head_fraction": 0.15,
        "tail_count": 5,
        "cardinality": 3.0,
        "clusters": 50,
        "cluster_affinity": 0.7,
    }
    unknown = set(options) - set(allowed)
    if unknown:
        raise ParameterError(f"unknown synthetic-data options: {sorted(unknown)}")
    out: dict[str, Any] = {**allowed, **options}
    out["tail_count"] = int(out["tail_count"])
    out["clusters"] = int(out["clusters"])
    return out


def make_synthetic(
    n_rows: int = 10_000, n_labels: int = 500, seed: int = 0, **options: float
) -> pd.DataFrame:
    """The synthetic dataset as a pandas DataFrame (``id``, ``text``, ``labels`` as lists).

    Same arguments as :func:`make_synthetic_table`.
    """
    table = make_synthetic_table(n_rows, n_labels, seed, **options)  # type: ignore[arg-type]
    df = table.to_pandas()
    df["labels"] = [list(v) for v in df["labels"]]
    return df


def write_synthetic(
    path: str | Path,
    n_rows: int = 10_000,
    n_labels: int = 500,
    seed: int = 0,
    *,
    overwrite: bool = False,
    **options: float,
) -> pa.Table:
    """Write the synthetic dataset to a Parquet file (atomically) and return the table."""
    from mlbalance.io import LabelSpec, write_parquet

    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"{path} exists; pass overwrite=True to replace it", param="overwrite")
    table = make_synthetic_table(n_rows, n_labels, seed, **options)  # type: ignore[arg-type]
    names = tuple(label_names(n_labels))
    # the writer checks the parent folder exists and writes atomically
    write_parquet(table, path, labels=names, spec=LabelSpec())
    return table
