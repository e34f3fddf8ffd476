"""Benchmark: ``mlbalance analyse`` on a large synthetic Parquet file.

Generates (once, cached outside git) a Parquet file of N rows x 500 labels — labels as a list
of strings, an ``id`` column and a ~300-character ``text`` column that ``analyse`` must not
read — then times the whole command as a child process (interpreter start-up included) and
reads its peak resident memory from ``wait4``'s rusage. It also times the stages inside one
process (reading the label column, the measures, co-occurrence, the report) so that a slow
run says where the time went.

Run::

    .venv/bin/python benchmarks/bench_analyse.py                 # 10,000,000 rows
    .venv/bin/python benchmarks/bench_analyse.py --rows 1000000  # quicker
    .venv/bin/python benchmarks/bench_analyse.py --cache /tmp/mlbalance-bench --repeat 3
    .venv/bin/python benchmarks/bench_analyse.py --rows 100000 --labels 30000 --wide-row 20000

Targets (issue 2): <= 5 s wall and <= 1.5 GB peak memory for 10M rows on a 2-core machine.
``--wide-row K`` gives the last row labels ``0..K-1`` (the row of 20,000 labels that took 74 s
and 12 GB when every label pair was counted): memory must stay bounded by the data.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
TEXT_CHARS = 300
CHUNK = 1 << 20  # = pyarrow's default row-group size


def _text_chunk(rng: np.random.Generator, n: int) -> pa.Array:
    """*n* strings of TEXT_CHARS lowercase letters and spaces (word lengths about 2-9)."""
    letters = rng.integers(ord("a"), ord("z") + 1, size=n * TEXT_CHARS, dtype=np.uint8)
    spaces = rng.random(n * TEXT_CHARS) < 0.17
    letters[spaces] = ord(" ")
    offsets = np.arange(0, (n + 1) * TEXT_CHARS, TEXT_CHARS, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(letters)]
    )


def generate(path: Path, n_rows: int, n_labels: int, seed: int, wide_row: int = 0) -> None:
    """Write the benchmark file in row groups (bounded memory), atomically."""
    from mlbalance.io import LabelSpec, mlbalance_metadata
    from mlbalance.labels import LabelMatrix
    from mlbalance.synth import synth_label_matrix

    t0 = time.perf_counter()
    ym = synth_label_matrix(n_rows, n_labels, seed=seed)
    if wide_row:
        import scipy.sparse as sp

        m = ym.matrix.tolil()
        m.rows[-1] = list(range(min(wide_row, n_labels)))
        m.data[-1] = [1] * len(m.rows[-1])
        ym = LabelMatrix.from_sparse(sp.csr_matrix(m), ym.names)
    names = pa.array(ym.names, type=pa.string())
    meta = mlbalance_metadata(ym.names, LabelSpec())
    import json

    schema = pa.schema(
        [("id", pa.int64()), ("text", pa.string()), ("labels", pa.list_(pa.string()))],
        metadata={"mlbalance": json.dumps(meta)},
    )
    rng = np.random.default_rng(seed + 1)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    indptr, indices = ym.matrix.indptr, ym.matrix.indices
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for start in range(0, n_rows, CHUNK):
            stop = min(start + CHUNK, n_rows)
            ptr = indptr[start : stop + 1]
            labels = pa.ListArray.from_arrays(
                pa.array((ptr - ptr[0]).astype(np.int32)),
                names.take(pa.array(indices[ptr[0] : ptr[-1]].astype(np.int32))),
            )
            batch = pa.record_batch(
                [
                    pa.array(np.arange(start, stop, dtype=np.int64)),
                    _text_chunk(rng, stop - start),
                    labels,
                ],
                schema=schema,
            )
            writer.write_batch(batch, row_group_size=CHUNK)
    os.replace(tmp, path)
    size = path.stat().st_size / 2**20
    print(
        f"generated {path} ({n_rows:,} rows, {size:,.0f} MiB) in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )


def run_command(path: Path, json_out: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + sys) and peak RSS (MiB) of the command as a child."""
    cmd = [sys.executable, "-m", "mlbalance", "analyse", str(path), "--json", str(json_out)]
    env = {**os.environ, "MLBALANCE_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mlbalance analyse failed:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def stages(path: Path) -> list[tuple[str, float, float]]:
    """Time the stages of analyse in this process."""
    out: list[tuple[str, float, float]] = []

    def timed(name: str, fn: object) -> object:
        t, c = time.perf_counter(), time.process_time()
        result = fn()  # type: ignore[operator]
        out.append((name, time.perf_counter() - t, time.process_time() - c))
        return result

    timed("import mlbalance.cli + analyse", lambda: __import__("mlbalance.analyse"))
    from mlbalance import measures as M
    from mlbalance.analyse import analyse
    from mlbalance.io import read_labels

    y = timed("read label column (io.read_labels)", lambda: read_labels(path))
    timed("measures (compute_measures)", lambda: M.compute_measures(y))
    timed("top label pairs (measures.top_pairs)", lambda: M.top_pairs(y, 20))
    timed("whole report (analyse)", lambda: analyse(y))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--labels", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mlbalance-bench"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of the command (best is kept)")
    ap.add_argument("--no-stages", action="store_true", help="skip the in-process stage timings")
    ap.add_argument("--wide-row", type=int, default=0, help="give the last row this many labels")
    args = ap.parse_args()

    wide = f"-w{args.wide_row}" if args.wide_row else ""
    path = args.cache / f"analyse-{args.rows}x{args.labels}-s{args.seed}{wide}.parquet"
    if not path.exists():
        # in a child process: on Linux a forked child's peak RSS starts at its parent's, so
        # generating here (4 GB for 10M rows) would show up as the command's peak memory
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(
            target=generate, args=(path, args.rows, args.labels, args.seed, args.wide_row)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"generating {path} failed (exit {child.exitcode})")
    size = path.stat().st_size / 2**20
    json_out = args.cache / "analyse-bench.json"
    runs = [run_command(path, json_out) for _ in range(args.repeat)]
    print(
        f"\nmlbalance analyse {path.name}  ({args.rows:,} rows x {args.labels} labels, "
        f"{size:,.0f} MiB Parquet with a {TEXT_CHARS}-char text column)"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'run':>4} {'wall s':>8} {'cpu s':>7} {'peak RSS MiB':>13}")
    for i, (wall, cpu, rss) in enumerate(runs, 1):
        print(f"{i:>4} {wall:>8.2f} {cpu:>7.2f} {rss:>13,.0f}")
    best = min(r[0] for r in runs)
    peak = max(r[2] for r in runs)
    print(f"best wall {best:.2f} s (target <= 5 s); peak RSS {peak:,.0f} MiB (target <= 1536)")
    if not args.no_stages:
        print("\nstages in one process (wall s, cpu s):")
        for name, sec, cpu in stages(path):
            print(f"  {name:<40} {sec:>6.2f} {cpu:>6.2f}")


if __name__ == "__main__":
    main()
