"""Splitting one epoch's indices between ranks, by the rules of torch's DistributedSampler.

Pure numpy and pure functions, so the per-rank logic is tested without processes. The
rules (``torch/utils/data/distributed.py``): with ``drop_last=False`` every rank gets
``ceil(n / R)`` indices and the epoch is padded by repeating its head; with
``drop_last=True`` and ``n % R != 0`` every rank gets ``ceil((n - R) / R)`` and the tail is
dropped. Rank ``r`` then takes positions ``r, r + R, r + 2R, ...``.
"""

from __future__ import annotations

import math

import numpy as np

from mlbalance.errors import ParameterError

__all__ = ["check_replicas", "default_replicas", "per_rank_length", "shard"]


def check_replicas(num_replicas: int, rank: int) -> tuple[int, int]:
    """Validate ``num_replicas`` and ``rank``; the messages follow torch's."""
    if isinstance(num_replicas, bool) or not isinstance(num_replicas, (int, np.integer)):
        raise ParameterError(f"num_replicas must be an int, got {num_replicas!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise ParameterError(f"rank must be an int, got {rank!r}")
    if num_replicas < 1:
        raise ParameterError(f"Invalid num_replicas {num_replicas}, num_replicas should be >= 1")
    if rank >= num_replicas or rank < 0:
        raise ParameterError(
            f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
        )
    return int(num_replicas), int(rank)


def default_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """Fill ``num_replicas``/``rank`` from ``torch.distributed`` when it is initialised.

    Unlike torch's DistributedSampler, which raises when the process group is not
    initialised, a single process (world size 1, rank 0) is assumed then, so the same code
    runs with and without ``torchrun``.
    """
    if num_replicas is None or rank is None:
        world, me = 1, 0
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                world, me = dist.get_world_size(), dist.get_rank()
        except ImportError:  # pragma: no cover - numpy-only use: one process
            pass
        num_replicas = world if num_replicas is None else num_replicas
        rank = me if rank is None else rank
    return check_replicas(num_replicas, rank)


def per_rank_length(n: int, num_replicas: int, drop_last: bool) -> int:
    """Indices each rank gets from an epoch of ``n`` indices (DistributedSampler's rule)."""
    if drop_last and n % num_replicas != 0:
        return math.ceil((n - num_replicas) / num_replicas)
    return math.ceil(n / num_replicas)


def shard(indices: np.ndarray, num_replicas: int, rank: int, drop_last: bool) -> np.ndarray:
    """This rank's part of one epoch's indices, padded or cut as DistributedSampler does.

    Parameters
    ----------
    indices : numpy.ndarray
        The whole epoch, in order (identical on every rank).
    num_replicas, rank : int
        World size and this rank.
    drop_last : bool
        Drop the tail (``True``) or pad by repeating the head (``False``).

    Returns
    -------
    numpy.ndarray
        ``per_rank_length(len(indices), num_replicas, drop_last)`` indices.
    """
    n = int(indices.size)
    per_rank = per_rank_length(n, num_replicas, drop_last)
    total = per_rank * num_replicas
    if total > n:
        if n == 0:
            raise ParameterError("cannot pad an empty epoch to split it between ranks")
        # The padded epoch repeats the epoch's head cyclically: padded[p] = indices[p % n].
        # Index it without building it, so a rank holds only its own part.
        return indices[np.arange(rank, total, num_replicas) % n]
    return indices[rank:total:num_replicas]
