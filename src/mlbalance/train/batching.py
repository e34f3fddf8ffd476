"""Tokenise once, then cut batches with numpy: the data path that keeps a GPU fed.

Measured on an H200 (BENCHMARKS.md, "GPU throughput"), ``mlbalance train`` is bound by the
host, not the GPU: all-MiniLM-L6-v2 at batch 32 spends ~20 ms of host time per step for ~650
kernel launches. Whatever the data path costs on the host comes on top, so it must cost
close to nothing per step:

* :class:`TokenCache` tokenises a split once, before training, with the Rust tokenizer in
  batches (as ``datasets.map`` does in the Hugging Face recipe), and keeps the token ids of
  every row in one flat ``int32`` array with row offsets. A batch is then assembled by numpy
  fancy indexing — no Python loop over rows — and padded to the batch's longest row, rounded
  up to ``pad_to_multiple_of`` (a few distinct shapes, which ``torch.compile`` and CUDA graphs
  need; 8 or 16 also suit the tensor cores).
* :func:`length_grouped_order` reorders an epoch's indices so that each batch holds rows of
  similar length (less padding), in the way of transformers' ``LengthGroupedSampler``: the
  order is cut into mega-batches of ``batch_size * mega_batches`` indices, each sorted by
  length and cut into batches, and the batches are shuffled. It works on the order any
  sampler made (repeat-factor, class-aware, a rank's shard under DDP), so it keeps their
  sampling frequencies and their split between ranks exactly: it only permutes within a
  mega-batch and shuffles whole batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["TokenBatches", "TokenCache", "length_grouped_order"]


@dataclass
class TokenCache:
    """The token ids of every row of a split, in one flat array.

    Attributes
    ----------
    ids : numpy.ndarray of int32
        All rows' token ids, concatenated (special tokens included, truncated to
        ``max_length``).
    starts : numpy.ndarray of int64
        Row ``i``'s ids are ``ids[starts[i] : starts[i] + lengths[i]]``.
    lengths : numpy.ndarray of int32
        Tokens per row.
    truncated : numpy.ndarray of bool
        Rows that were longer than ``max_length``.
    pad_id : int
        The padding token id.
    token_type_ids : bool
        The model takes ``token_type_ids`` (BERT-style): batches carry zeros for them.
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    truncated: np.ndarray
    pad_id: int
    token_type_ids: bool

    @classmethod
    def build(
        cls,
        texts: Sequence[str] | Any,
        tokenizer: Any,
        max_length: int,
        *,
        chunk_rows: int = 16384,
        progress: Callable[[int], None] | None = None,
    ) -> TokenCache:
        """Tokenise *texts* with the fast tokenizer's Rust backend, *chunk_rows* at a time.

        Parameters
        ----------
        texts : sequence of str or pyarrow string array
            One text per row (``None`` is read as ``""``).
        tokenizer : transformers fast tokenizer
            Its ``backend_tokenizer`` does the work (special tokens added, truncation).
        max_length : int
            Tokens per row, special tokens included.
        chunk_rows : int
            Rows per call of the backend (it parallelises within a call).
        progress : callable, optional
            Called with the number of rows done after each chunk.
        """
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.enable_truncation(max_length=max_length)
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        n = len(texts)
        lengths = np.zeros(n, dtype=np.int32)
        truncated = np.zeros(n, dtype=bool)
        parts: list[np.ndarray] = []
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            chunk = texts[start:stop]
            chunk = chunk.to_pylist() if hasattr(chunk, "to_pylist") else list(chunk)
            encodings = encode([t if t is not None else "" for t in chunk])
            rows = [e.ids for e in encodings]
            sizes = np.fromiter(map(len, rows), dtype=np.int32, count=len(rows))
            lengths[start:stop] = sizes
            truncated[start:stop] = [bool(e.overflowing) for e in encodings]
            flat = itertools.chain.from_iterable(rows)  # C-level: no Python loop per token
            parts.append(np.fromiter(flat, dtype=np.int32, count=int(sizes.sum())))
            if progress is not None:
                progress(stop - start)
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        pad = tokenizer.pad_token_id
        return cls(
            ids=ids,
            starts=starts,
            lengths=lengths,
            truncated=truncated,
            pad_id=int(pad if pad is not None else 0),
            token_type_ids="token_type_ids" in getattr(tokenizer, "model_input_names", ()),
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(
        self, rows: Sequence[int] | np.ndarray, pad_to_multiple_of: int = 1
    ) -> dict[str, Any]:
        """``input_ids`` / ``attention_mask`` (int64 arrays) of *rows*, padded on the right.

        The width is the longest row's length rounded up to *pad_to_multiple_of*.
        """
        idx = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[idx]
        longest = int(lengths.max()) if len(idx) else 0
        m = max(1, int(pad_to_multiple_of))
        width = max(m, -(-longest // m) * m)
        cols = np.arange(width)
        mask = cols[None, :] < lengths[:, None]
        source = self.starts[idx][:, None] + cols[None, :]
        input_ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        input_ids[mask] = self.ids[source[mask]]
        out = {"input_ids": input_ids, "attention_mask": mask.astype(np.int64)}
        if self.token_type_ids:
            out["token_type_ids"] = np.zeros_like(input_ids)
        return out


def length_grouped_order(
    order: Sequence[int] | np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    *,
    mega_batches: int = 50,
    seed: int | Sequence[int] = 0,
) -> np.ndarray:
    """*order* rearranged so that each run of *batch_size* indices has similar lengths.

    Parameters
    ----------
    order : sequence of int
        An epoch's indices as a sampler made them (repeats and a rank's shard included).
    lengths : numpy.ndarray
        Tokens per row, indexed by the values of *order*.
    batch_size : int
        Rows per batch.
    mega_batches : int, default 50
        Batches per mega-batch: larger groups pad less but mix the order less.
    seed : int or sequence of int
        Seed of the batch shuffle, e.g. ``(seed, epoch)``: same seed, same order.

    Returns
    -------
    numpy.ndarray of int64
        The same multiset of indices as *order*; the batch that holds the longest row first
        (a run that runs out of memory fails on its first step, not hours in), the other
        batches in a seeded random order; the last, possibly short, batch stays last.
    """
    order = np.asarray(order, dtype=np.int64)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if len(order) <= batch_size:
        return order.copy()
    size = batch_size * max(1, mega_batches)
    groups = []
    for start in range(0, len(order), size):
        block = order[start : start + size]
        # stable: equal lengths keep the sampler's (random) order
        groups.append(block[np.argsort(-lengths[block], kind="stable")])
    flat = np.concatenate(groups)
    n_full = len(flat) // batch_size
    full = flat[: n_full * batch_size].reshape(n_full, batch_size)
    tail = flat[n_full * batch_size :]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_full)
    longest = int(np.argmax(lengths[full].max(axis=1)))
    perm = np.concatenate([[longest], perm[perm != longest]])
    return np.concatenate([full[perm].ravel(), tail])


class TokenBatches(torch.utils.data.Dataset):
    """Batches by index list from a :class:`TokenCache` (the training and validation data).

    ``batches[[3, 17, 5]]`` returns ``{"input_ids", "attention_mask"[, "token_type_ids"],
    "labels", "n_truncated", "index"}`` as tensors (the interface of
    :class:`~mlbalance.train.data.TextBatches`), in pinned memory when *pin* is set, so the
    copy to the GPU can overlap the previous step.

    Parameters
    ----------
    cache : TokenCache
        The split, tokenised.
    labels : scipy.sparse.csr_matrix or None
        0/1 labels; None for scoring.
    pad_to_multiple_of : int
        Round each batch's width up to a multiple of this.
    pin : bool
        Put the tensors in page-locked memory.
    """

    def __init__(
        self, cache: TokenCache, labels: Any, pad_to_multiple_of: int = 1, *, pin: bool = False
    ) -> None:
        self.cache, self.labels = cache, labels
        self.pad_to_multiple_of, self.pin = pad_to_multiple_of, pin

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row (for length grouping and length-sorted scoring)."""
        return self.cache.lengths

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        arrays = self.cache.batch(idx, self.pad_to_multiple_of)
        out = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[idx].toarray().astype(np.float32))
        if self.pin:
            out = {k: v.pin_memory() for k, v in out.items()}
        out["n_truncated"] = torch.tensor(int(self.cache.truncated[idx].sum()))
        out["index"] = torch.from_numpy(idx)
        return out
