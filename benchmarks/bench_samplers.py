"""Benchmark: one epoch of the repeat-factor and class-aware samplers, against torch's.

For each size it builds the synthetic long-tailed label matrix (500 labels), computes the
repeat factors, and times, in one process:

* ``repeat_factors``                 the LVIS factors from the label matrix;
* ``RepeatFactorSampler`` epoch      one new epoch's indices as a numpy array (stochastic
                                     rounding, ``np.repeat``, shuffle, this rank's share);
* ``RepeatFactorSampler`` iterate    the same, consumed as Python ints (what a DataLoader does);
* ``ClassAwareSampler`` epoch        ``n_rows`` class-aware draws;
* ``WeightedRandomSampler`` iterate  torch's sampler with the same weights and epoch length
                                     (``torch.multinomial``; refuses more than 2^24 rows);
* ``DistributedSampler`` iterate     a plain shuffled epoch, for scale.

Peak memory of the numpy work is measured with ``tracemalloc`` (numpy reports its buffers
to it) and shown per row, to show it is linear in rows. Run::

    .venv/bin/python benchmarks/bench_samplers.py                     # 1M and 10M rows
    .venv/bin/python benchmarks/bench_samplers.py --rows 1000000 20000000
    .venv/bin/python benchmarks/bench_samplers.py --rows 100000000 --no-torch  # ~4 GB

Target (issue 5): one epoch's indices for 10,000,000 rows in <= 1 s; memory linear in rows.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

MULTINOMIAL_LIMIT = 2**24


CPU: dict[str, float] = {}


def timed(fn: Callable[[], Any], *, memory: bool = True) -> tuple[float, float, Any]:
    """(wall seconds, peak traced bytes, result) of one call; CPU seconds in ``CPU["last"]``."""
    gc.collect()
    if memory:
        tracemalloc.start()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    CPU["last"] = time.process_time() - c0
    peak = 0.0
    if memory:
        peak = float(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return dt, peak, out


def sec(wall: float) -> str:
    """Wall seconds with the CPU seconds of the same call in brackets."""
    return f"{wall:.2f} ({CPU['last']:.2f})"


def consume(it: Any) -> int:
    n = 0
    for _ in it:
        n += 1
    return n


def label_factors(n_rows: int, seed: int) -> tuple[np.ndarray, Any, float, float]:
    """Factors of a synthetic matrix; for sizes the generator cannot hold, tiled from 10M."""
    from mlbalance.samplers import repeat_factors
    from mlbalance.synth import synth_label_matrix

    base = min(n_rows, 10_000_000)
    t0 = time.perf_counter()
    y = synth_label_matrix(base, 500, seed=seed)
    gen = time.perf_counter() - t0
    dt, peak, f = timed(lambda: repeat_factors(y, threshold=0.01))
    if base < n_rows:
        f = np.resize(f, n_rows)  # same factor distribution, more rows
        y = None
    print(f"(synthetic {base:,} x 500 label matrix generated in {gen:.1f} s)", flush=True)
    return f, y, dt, peak


def multinomial_fails(sampler: Any) -> str:
    """'fails' when torch refuses the sampler (more than 2^24 rows), else 'ran'."""
    try:
        next(iter(sampler))
    except RuntimeError as exc:
        print(f"  torch: {str(exc).splitlines()[0]}")
        return "fails"
    return "ran"


def run(n_rows: int, world: int, with_torch: bool, seed: int) -> list[tuple[str, str, str]]:
    from mlbalance.samplers import ClassAwareSampler, RepeatFactorSampler

    rows: list[tuple[str, str, str]] = []
    f, y, dt, peak = label_factors(n_rows, seed)
    if y is not None:
        rows.append(("repeat_factors (label matrix -> factors)", sec(dt), f"{peak / n_rows:.1f}"))
    expected = f.sum()
    # one-time per process: load (or compile) the numba shuffle
    warm = RepeatFactorSampler.from_factors(np.ones(1 << 18), seed=seed, num_replicas=1, rank=0)
    dt, _, _ = timed(lambda: warm.epoch_indices(), memory=False)
    rows.append(("numba shuffle load/compile (once per process)", sec(dt), "-"))
    s = RepeatFactorSampler.from_factors(f, seed=seed, num_replicas=world, rank=0)
    for epoch in (0, 1):
        s.set_epoch(epoch)
        s._cached = None  # time a fresh epoch, rounding included
        dt, peak, idx = timed(lambda: s.epoch_indices())
        rows.append(
            (f"RepeatFactorSampler epoch {epoch} -> numpy ({idx.size:,} idx/rank)",
             sec(dt), f"{peak / n_rows:.1f}")
        )  # fmt: skip
    plain = idx.copy()
    dt, _, _ = timed(lambda: np.random.default_rng(seed).shuffle(plain), memory=False)
    rows.append(("  (numpy Generator.shuffle of the same indices, for comparison)", sec(dt), "-"))
    plain = None  # free it before the next step
    s.set_epoch(2)
    s._cached = None
    dt, _, n = timed(lambda: consume(iter(s)), memory=False)
    rows.append((f"RepeatFactorSampler epoch -> Python ints ({n:,})", sec(dt), "-"))
    if y is not None:
        dt, peak, c = timed(lambda: ClassAwareSampler(y, seed=seed, num_replicas=world, rank=0))
        rows.append(("ClassAwareSampler build (CSC of labels)", sec(dt), f"{peak / n_rows:.1f}"))
        dt, peak, idx = timed(lambda: c.epoch_indices())
        rows.append((f"ClassAwareSampler epoch -> numpy ({idx.size:,})", sec(dt),
                     f"{peak / n_rows:.1f}"))  # fmt: skip
    if with_torch:
        import torch
        from torch.utils.data import DistributedSampler, WeightedRandomSampler

        weights = torch.from_numpy(f)
        label = f"torch WeightedRandomSampler epoch -> Python ints ({int(expected):,})"
        w = WeightedRandomSampler(weights, num_samples=round(expected), replacement=True)
        if n_rows <= MULTINOMIAL_LIMIT:
            dt, _, _ = timed(lambda: consume(iter(w)), memory=False)
            rows.append((label, sec(dt), "-"))
        else:
            rows.append((label, multinomial_fails(w), "-"))
        d = DistributedSampler(range(n_rows), num_replicas=world, rank=0, seed=seed)
        dt, _, n = timed(lambda: consume(iter(d)), memory=False)
        rows.append((f"torch DistributedSampler epoch -> Python ints ({n:,})", sec(dt), "-"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--world", type=int, default=1, help="num_replicas (rank 0 is timed)")
    parser.add_argument("--no-torch", action="store_true", help="skip torch's samplers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'rows':>12}  {'step':<66} {'wall (cpu) s':>14} {'peak B/row':>11}")
    for n in args.rows:
        for name, secs, mem in run(n, args.world, not args.no_torch, args.seed):
            print(f"{n:>12,}  {name:<66} {secs:>14} {mem:>11}", flush=True)
    if not args.no_torch and max(args.rows) <= MULTINOMIAL_LIMIT:
        import torch
        from torch.utils.data import WeightedRandomSampler

        n = MULTINOMIAL_LIMIT + 1
        w = WeightedRandomSampler(torch.ones(n, dtype=torch.float32), num_samples=n)
        name = "torch WeightedRandomSampler at 2^24 + 1 rows"
        print(f"{n:>12,}  {name:<66} {multinomial_fails(w):>14} {'-':>11}")


if __name__ == "__main__":
    main()
