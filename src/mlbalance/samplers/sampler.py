"""Repeat-factor and class-aware samplers for PyTorch training loops (imports torch).

Both are map-style :class:`torch.utils.data.Sampler` objects with the contract of
:class:`torch.utils.data.DistributedSampler`: ``set_epoch``, ``seed``, ``num_replicas`` and
``rank`` (from ``torch.distributed`` when it is initialised), the same number of indices
on every rank (padding or dropping as DistributedSampler does), and an exact ``__len__``.
All randomness comes from numpy generators built from ``(seed, epoch)``, so an epoch is
the same in every process and no global seeding changes it; nothing calls
``torch.multinomial``, so data sets of more than 2^24 rows work.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Sampler

from mlbalance._params import BOOL, Interval, Options, validate_params
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import as_label_matrix
from mlbalance.samplers._shard import default_replicas, per_rank_length, shard
from mlbalance.samplers._shuffle import shuffle
from mlbalance.samplers.factors import (
    REPEAT_CONSTRAINTS,
    repeat_factors,
    resolve_threshold,
    stochastic_round,
)

__all__ = ["ClassAwareSampler", "RepeatFactorSampler"]

# Indices are handed to Python in chunks of this many, so no full Python list is built.
_YIELD_CHUNK = 1 << 16

# Stream tags: each purpose gets its own generator derived from (seed, epoch, tag).
_ROUND, _SHUFFLE, _CLASS_AWARE = 0, 1, 2


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"Invalid seed {seed!r}, seed should be a non-negative int")
    return int(seed)


def _check_epoch(epoch: Any) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ParameterError(f"Invalid epoch {epoch!r}, epoch should be a non-negative int")
    return int(epoch)


def epoch_rng(seed: int, epoch: int, tag: int) -> np.random.Generator:
    """The generator for one purpose (``tag``) of one epoch: ``SeedSequence([seed, epoch, tag])``.

    Unlike torch's ``seed + epoch``, (seed 0, epoch 1) and (seed 1, epoch 0) differ.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, tag]))


def _as_python_ints(indices: np.ndarray) -> Iterator[int]:
    for start in range(0, indices.size, _YIELD_CHUNK):
        yield from indices[start : start + _YIELD_CHUNK].tolist()


#: Constraints shared by both samplers (:mod:`mlbalance._params`).
_COMMON_CONSTRAINTS: dict[str, Any] = {
    "seed": Interval(int, 0, None),
    "num_replicas": Interval(int, 1, None, allow_none=True),
    "rank": Interval(int, 0, None, allow_none=True),
    "drop_last": BOOL,
}


class _EpochSampler(Sampler[int]):
    """Shared plumbing: epoch, seed, ranks, sharding, iteration."""

    _parameter_constraints: ClassVar[dict[str, Any]] = _COMMON_CONSTRAINTS

    def __init__(
        self, *, seed: int, num_replicas: int | None, rank: int | None, drop_last: bool
    ) -> None:
        self.seed = _check_seed(seed)
        self.num_replicas, self.rank = default_replicas(num_replicas, rank)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; call it before each epoch's ``DataLoader`` iterator is created.

        The epoch (with the seed) decides the stochastic rounding and the order, so
        without it every epoch repeats the first one.

        Parameters
        ----------
        epoch : int
            Epoch number, >= 0.
        """
        self.epoch = _check_epoch(epoch)

    def _epoch_total(self, epoch: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _epoch_all(self, epoch: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def epoch_length(self, epoch: int | None = None) -> int:
        """Indices in the whole epoch, all ranks together, before padding or dropping."""
        return self._epoch_total(self.epoch if epoch is None else _check_epoch(epoch))

    def epoch_indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's indices for ``epoch`` (default: the current one) as a numpy array."""
        e = self.epoch if epoch is None else _check_epoch(epoch)
        return shard(self._epoch_all(e), self.num_replicas, self.rank, self.drop_last)

    def __iter__(self) -> Iterator[int]:
        return _as_python_ints(self.epoch_indices())

    def __len__(self) -> int:
        return per_rank_length(self.epoch_length(), self.num_replicas, self.drop_last)


class RepeatFactorSampler(_EpochSampler):
    """Repeat-factor sampling (LVIS) with stochastic rounding redrawn every epoch.

    Each epoch, row ``i`` appears ``floor(r_i)`` times plus once more with probability
    ``r_i - floor(r_i)``, where ``r_i`` is its repeat factor (:func:`repeat_factors`:
    ``max(1, (t / f(c)) ** power)`` for its rarest label ``c``). The epoch is then shuffled
    and split between ranks as :class:`torch.utils.data.DistributedSampler` splits a data
    set.

    Parameters
    ----------
    Y_or_factors : LabelMatrix, array-like or 1-D float array
        The training labels (anything :func:`~mlbalance.labels.as_label_matrix` accepts),
        or precomputed per-row factors as a 1-D float numpy array or torch tensor (then
        ``threshold`` must be ``None``; see also :meth:`from_factors`).
    threshold : float or "auto"
        ``t`` in (0, 1], or ``"auto"``: derived from the label frequencies so that an epoch
        is expected to grow 1.5x (:func:`~mlbalance.samplers.factors.auto_threshold`);
        required with labels. A threshold below every label's frequency repeats nothing and
        is warned about.
    power : float, default 0.5
        Exponent of ``t / f(c)``; 0.5 as LVIS, 1.0 as detectron2's ``REPEAT_SQRT=False``.
    max_repeat : float, optional
        Cap on every factor.
    shuffle : bool, default True
        Shuffle the epoch; otherwise rows come in order, each repeated in place.
    seed : int, default 0
        Must be the same on every rank.
    num_replicas, rank : int, optional
        World size and this process's rank; default from ``torch.distributed`` when it is
        initialised, else a single process.
    drop_last : bool, default False
        As DistributedSampler: drop the epoch's tail so ranks get equal parts, instead
        of padding it with the epoch's head.

    Attributes
    ----------
    threshold : float or None
        The threshold used (the derived number for ``"auto"``; None with factors).
    factors : numpy.ndarray
        Per-row repeat factors.
    expected_epoch_growth : float
        Expected rows per epoch / rows (the mean factor).

    Notes
    -----
    After Gupta, Dollár and Girshick (2019), "LVIS", appendix B.2, and detectron2's
    ``RepeatFactorTrainingSampler``, which rounds the same way. Differences from
    detectron2: an epoch is finite with an exact ``__len__`` (its realised length is
    known before iterating, because the rounding is drawn from a numpy generator made from
    ``(seed, epoch)``), ``set_epoch`` replaces one infinite stream, ranks split each epoch
    as DistributedSampler does rather than striding an infinite stream, and the index list
    is built with ``numpy.repeat`` and shuffled with a cache-friendly bucket shuffle
    (Rao-Sandelius; :mod:`mlbalance.samplers._shuffle`), so memory is linear in rows (about
    25 bytes per index at peak) and no Python loop runs over rows.

    Examples
    --------
    >>> sampler = RepeatFactorSampler(labels, threshold=0.01)  # doctest: +SKIP
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)  # doctest: +SKIP
    >>> for epoch in range(n_epochs):  # doctest: +SKIP
    ...     sampler.set_epoch(epoch)
    ...     for batch in loader:
    ...         ...
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **REPEAT_CONSTRAINTS,
        "threshold": (
            Interval(float, 0, 1, closed="right", allow_none=True),
            Options(("auto",)),
        ),
        "shuffle": BOOL,
        **_COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        Y_or_factors: Any,
        threshold: float | str | None = None,
        power: float = 0.5,
        max_repeat: float | None = None,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> None:
        validate_params(
            self._parameter_constraints,
            {
                "threshold": threshold,
                "power": power,
                "max_repeat": max_repeat,
                "shuffle": shuffle,
                "seed": seed,
                "num_replicas": num_replicas,
                "rank": rank,
                "drop_last": drop_last,
            },
        )
        super().__init__(seed=seed, num_replicas=num_replicas, rank=rank, drop_last=drop_last)
        if _is_factor_vector(Y_or_factors):
            if threshold is not None:
                raise ParameterError(
                    "RepeatFactorSampler got precomputed factors and a threshold; "
                    "give labels with a threshold, or factors alone",
                    param="threshold",
                )
            factors = _check_factors(Y_or_factors)
            used: float | None = None
        else:
            if threshold is None:
                raise ParameterError(
                    "RepeatFactorSampler needs a threshold in (0, 1] or 'auto' to compute "
                    "factors from labels (or use RepeatFactorSampler.from_factors)",
                    param="threshold",
                )
            labels = as_label_matrix(Y_or_factors)
            if labels.n_rows == 0:
                raise InputError("label matrix is empty: no rows to sample from")
            used = resolve_threshold(labels, threshold, power, max_repeat)
            factors = repeat_factors(labels, used, power, max_repeat)
        self.threshold = used
        self.power = float(power)
        self.max_repeat = max_repeat
        self.shuffle = bool(shuffle)
        self.factors: np.ndarray = factors
        self._index_dtype = np.int32 if factors.size < 2**31 else np.int64
        self._cached: tuple[int, np.ndarray] | None = None

    @classmethod
    def from_factors(
        cls,
        factors: Any,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> RepeatFactorSampler:
        """A sampler over precomputed per-row factors (e.g. from :func:`repeat_factors`).

        Parameters
        ----------
        factors : 1-D array-like of float
            Non-negative, finite; a factor below 1 keeps the row with that probability.
        shuffle, seed, num_replicas, rank, drop_last
            As in the constructor.
        """
        return cls(
            _check_factors(factors),
            shuffle=shuffle,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
        )

    @property
    def expected_epoch_length(self) -> float:
        """The expected number of indices per epoch, all ranks together (sum of factors)."""
        return float(self.factors.sum())

    @property
    def expected_epoch_growth(self) -> float:
        """Expected indices per epoch divided by the rows (1.0 = no row repeated)."""
        return self.expected_epoch_length / self.factors.size

    def epoch_counts(self, epoch: int | None = None) -> np.ndarray:
        """How many times each row appears in ``epoch`` (all ranks together, before padding)."""
        e = self.epoch if epoch is None else _check_epoch(epoch)
        if self._cached is None or self._cached[0] != e:
            self._cached = (e, stochastic_round(self.factors, epoch_rng(self.seed, e, _ROUND)))
        return self._cached[1]

    def _epoch_total(self, epoch: int) -> int:
        return int(self.epoch_counts(epoch).sum(dtype=np.int64))

    def _epoch_all(self, epoch: int) -> np.ndarray:
        counts = self.epoch_counts(epoch)
        idx = np.repeat(np.arange(counts.size, dtype=self._index_dtype), counts)
        if self.shuffle:
            idx = shuffle(idx, epoch_rng(self.seed, epoch, _SHUFFLE))
        return idx

    def __repr__(self) -> str:
        t = "factors" if self.threshold is None else f"{self.threshold:.4g}"
        return (
            f"RepeatFactorSampler(n_rows={self.factors.size}, threshold={t}, "
            f"expected_epoch_length={self.expected_epoch_length:.1f}, seed={self.seed}, "
            f"num_replicas={self.num_replicas}, rank={self.rank})"
        )


class ClassAwareSampler(_EpochSampler):
    """Class-aware sampling: draw a label uniformly, then a row that carries it.

    Each of ``num_samples`` draws per epoch picks one of the labels that have rows with
    equal probability and then one of that label's rows with equal probability, so every
    label is drawn about ``num_samples / n_labels`` times whatever its frequency (Shen,
    Lin and Huang 2016, "Relay Backpropagation", section 4.1; used with the
    distribution-balanced loss of Wu et al. 2020). The epoch is split between ranks as
    :class:`torch.utils.data.DistributedSampler` splits a data set.

    Parameters
    ----------
    Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` accepts
        The training labels.
    num_samples : int, optional
        Draws per epoch, all ranks together; default the number of rows.
    seed : int, default 0
        Must be the same on every rank.
    num_replicas, rank : int, optional
        As in :class:`RepeatFactorSampler`.
    drop_last : bool, default False
        As DistributedSampler.

    Notes
    -----
    Deviation from Shen et al.: they walk a shuffled list of each class's images
    cyclically (and a shuffled list of classes), so within a class every image is seen
    once before any is seen twice. Here both draws are independent and vectorised (sample
    all labels, then one uniform offset per draw into the label's row list in CSC form),
    which gives each row the same probability per draw,
    ``(1 / L) * sum_{c in row} 1 / n_c`` (:func:`class_aware_row_probabilities`), with
    somewhat more variance for small labels. Rows with no label are never drawn.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "num_samples": Interval(int, 1, None, allow_none=True),
        **_COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        Y: Any,
        num_samples: int | None = None,
        *,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> None:
        validate_params(
            self._parameter_constraints,
            {
                "num_samples": num_samples,
                "seed": seed,
                "num_replicas": num_replicas,
                "rank": rank,
                "drop_last": drop_last,
            },
        )
        super().__init__(seed=seed, num_replicas=num_replicas, rank=rank, drop_last=drop_last)
        lm = as_label_matrix(Y)
        if lm.n_rows == 0:
            raise InputError("label matrix is empty: no rows to sample from")
        csc = lm.matrix.tocsc()
        csc.sort_indices()
        counts = np.diff(csc.indptr).astype(np.int64)
        self.labels: np.ndarray = np.flatnonzero(counts > 0)
        if self.labels.size == 0:
            raise InputError("no row has a label: class-aware sampling has nothing to draw")
        self.num_samples = lm.n_rows if num_samples is None else int(num_samples)
        self.n_rows = lm.n_rows
        self._starts = csc.indptr[:-1].astype(np.int64)[self.labels]
        self._sizes = counts[self.labels]
        dtype = np.int32 if lm.n_rows < 2**31 else np.int64
        self._rows = csc.indices.astype(dtype, copy=False)

    def _epoch_total(self, epoch: int) -> int:
        return self.num_samples

    def epoch_labels(self, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The whole epoch as ``(label id, row)`` pairs, all ranks together, in draw order."""
        e = self.epoch if epoch is None else _check_epoch(epoch)
        rng = epoch_rng(self.seed, e, _CLASS_AWARE)
        pick = rng.integers(0, self.labels.size, size=self.num_samples)
        offsets = rng.integers(0, self._sizes[pick])
        return self.labels[pick], self._rows[self._starts[pick] + offsets]

    def _epoch_all(self, epoch: int) -> np.ndarray:
        return self.epoch_labels(epoch)[1]

    def __repr__(self) -> str:
        return (
            f"ClassAwareSampler(n_rows={self.n_rows}, labels={self.labels.size}, "
            f"num_samples={self.num_samples}, seed={self.seed}, "
            f"num_replicas={self.num_replicas}, rank={self.rank})"
        )


def _is_factor_vector(obj: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return obj.ndim == 1 and np.issubdtype(obj.dtype, np.floating)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.Tensor) and obj.ndim == 1 and obj.is_floating_point()


def _check_factors(factors: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(factors, torch.Tensor):
            factors = factors.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        arr = np.asarray(factors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"repeat factors must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ParameterError(f"repeat factors must be 1-D (one per row), got shape {arr.shape}")
    if arr.size == 0:
        raise InputError("repeat factors are empty: no rows to sample from")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"repeat factors must be finite and >= 0: row {i} has {float(arr[i])}")
    return arr
