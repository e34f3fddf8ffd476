"""Benchmark: ``mlbalance resample`` (ML-ROS, ML-RUS) on a large file, and MLSMOTE on embeddings.

1. Generates (once, cached outside git, with ``bench_analyse.generate``) a Parquet file of N
   rows x 500 labels with an ``id`` column and a ~300-character ``text`` column.
2. Times the whole command ``mlbalance resample FILE --method M --out DIR`` as a child process
   (interpreter start-up, label read, the algorithm, streaming the shards, sha256, manifest),
   with its peak resident memory from ``wait4``'s rusage.
3. In one process: the decision (labels -> row indices), the shard writing
   (``write_shards``: stream input batches, ``take``, write, hash) and pyarrow's raw
   ``pq.write_table`` of the very same output table already in memory, so the shard writer's
   throughput is reported as a fraction of pyarrow's.
4. MLSMOTE (library) on M rows x 384-d float32 embeddings with the synthetic long-tail labels.

There is no Python peer: imbalanced-learn rejects multilabel targets and the reference
implementation (R, mldr.resampling) cannot run here.

Run::

    .venv/bin/python benchmarks/bench_resample.py                      # 1,000,000 rows
    .venv/bin/python benchmarks/bench_resample.py --rows 200000 --smote-rows 20000   # quick

Targets (issue 4): ml-ros / ml-rus <= 5 s wall and <= 2 GB peak for 1M rows x 500 labels with a
300-char text; shards at >= 50 % of pyarrow's raw write throughput; MLSMOTE on 100,000 rows x
384-d <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


def run_command(path: Path, out: Path, method: str) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds of ``mlbalance resample`` as a child."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [
        sys.executable,
        "-m",
        "mlbalance",
        "resample",
        str(path),
        "--method",
        method,
        "--out",
        str(out),
        "--overwrite",
    ]
    env = {**os.environ, "MLBALANCE_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"mlbalance resample failed:\n{stderr.decode()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, _peak_children_mib(), cpu


def _peak_children_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def in_process(path: Path, method: str, workdir: Path) -> dict[str, float]:
    """Decision, shard writing and pyarrow's raw write of the same table, in this process."""
    from mlbalance.io import LabelSpec, read_labels
    from mlbalance.io.shards import DEFAULT_ROWS_PER_SHARD, ShardWriter, write_shards
    from mlbalance.resample.dataset import make_resampler

    out: dict[str, float] = {}
    t = time.perf_counter()
    labels = read_labels(path)
    out["read labels"] = time.perf_counter() - t
    t = time.perf_counter()
    result = make_resampler(method, random_state=0).sample(labels)
    out["decide (algorithm)"] = time.perf_counter() - t
    shard_dir = Path(tempfile.mkdtemp(dir=workdir))
    t = time.perf_counter()
    write_shards(path, result, shard_dir, input_labels=labels, spec=LabelSpec(), progress=False)
    out["write shards (stream+take+write+sha256)"] = time.perf_counter() - t
    size = sum(f.stat().st_size for f in shard_dir.glob("*.parquet"))
    shutil.rmtree(shard_dir)
    table = pq.read_table(path).take(np.sort(result.indices))
    t = time.perf_counter()
    raw = workdir / "raw.parquet"
    pq.write_table(table, raw, compression="snappy", row_group_size=1 << 17)
    out["pyarrow write_table (same rows, in memory)"] = time.perf_counter() - t
    raw.unlink()
    # the shard writer alone on the same in-memory table (shards + sha256, no input reading)
    shard_dir = Path(tempfile.mkdtemp(dir=workdir))
    t = time.perf_counter()
    writer = ShardWriter(shard_dir, table.num_rows, DEFAULT_ROWS_PER_SHARD, b"{}", _NoBar())
    writer.add(table)
    writer.close()
    out["shard writer only (same table, in memory)"] = time.perf_counter() - t
    shutil.rmtree(shard_dir)
    del table
    out["_bytes"] = size
    out["_rows"] = result.n_output
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass


def bench_mlsmote(n_rows: int, n_labels: int, dim: int, seed: int) -> tuple[float, int]:
    from mlbalance.resample import MLSMOTE
    from mlbalance.synth import synth_label_matrix

    y = synth_label_matrix(n_rows, n_labels, seed=seed)
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_labels, dim)).astype(np.float32)
    # embeddings near the mean of their labels' centres, like a sentence encoder's
    x = (y.matrix.astype(np.float32) @ centers) / np.maximum(y.row_sizes(), 1)[:, None]
    x = np.asarray(x, dtype=np.float32) + rng.normal(scale=0.5, size=(n_rows, dim)).astype(
        np.float32
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = MLSMOTE(random_state=0)
        r.fit_resample(x, y)
    return time.perf_counter() - t, int(r.report_["synthetic"])


def bench_mlsmote_large_bags(n_rows: int, dim: int, seed: int) -> tuple[float, int, int]:
    """MLSMOTE where minority bags hold thousands of rows (30 labels, P(label j) ~ 1/(j+1))."""
    from mlbalance.labels import LabelMatrix
    from mlbalance.resample import MLSMOTE

    rng = np.random.default_rng(seed)
    n_labels = 30
    y = rng.random((n_rows, n_labels)) < 0.5 / (1 + np.arange(n_labels))
    centers = rng.normal(size=(n_labels, dim)).astype(np.float32)
    x = (y.astype(np.float32) @ centers) / np.maximum(y.sum(1), 1)[:, None]
    x = (x + rng.normal(scale=0.5, size=(n_rows, dim))).astype(np.float32)
    labels = LabelMatrix.from_dense(y.astype(np.uint8))
    t = time.perf_counter()
    r = MLSMOTE(random_state=0)
    r.fit_resample(x, labels)
    return time.perf_counter() - t, int(r.report_["synthetic"]), int(labels.counts().min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="ml-ros,ml-rus")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mlbalance-bench"))
    ap.add_argument("--repeat", type=int, default=2, help="runs of each command (best is kept)")
    ap.add_argument("--smote-rows", type=int, default=100_000)
    ap.add_argument("--smote-dim", type=int, default=384)
    ap.add_argument("--no-smote", action="store_true")
    args = ap.parse_args()

    from bench_analyse import TEXT_CHARS, generate

    path = args.cache / f"analyse-{args.rows}x{args.labels}-s{args.seed}.parquet"
    if not path.exists():
        generate(path, args.rows, args.labels, args.seed)
    size = path.stat().st_size / 2**20
    print(
        f"\nmlbalance resample {path.name} ({args.rows:,} rows x {args.labels} labels, "
        f"{size:,.0f} MiB Parquet, {TEXT_CHARS}-char text)"
    )
    print(f"{'method':<8} {'run':>4} {'wall s':>8} {'CPU s':>8}")
    for method in args.methods.split(","):
        runs = [run_command(path, args.cache / f"out-{method}", method) for _ in range(args.repeat)]
        for i, (wall, _, cpu) in enumerate(runs, 1):
            print(f"{method:<8} {i:>4} {wall:>8.2f} {cpu:>8.2f}")
        print(
            f"{method:<8} best {min(r[0] for r in runs):>8.2f} s (target <= 5 s); peak RSS of "
            f"all children so far {runs[-1][1]:,.0f} MiB (target <= 2048)"
        )
        shutil.rmtree(args.cache / f"out-{method}", ignore_errors=True)
    for method in args.methods.split(","):
        st = in_process(path, method, args.cache)
        print(
            f"\n{method} stages in one process ({st['_rows']:,.0f} output rows, "
            f"{st['_bytes'] / 2**20:,.0f} MiB of shards):"
        )
        for k, v in st.items():
            if not k.startswith("_"):
                print(f"  {k:<45} {v:>6.2f} s")
        raw = st["pyarrow write_table (same rows, in memory)"]
        only = raw / st["shard writer only (same table, in memory)"]
        stream = raw / st["write shards (stream+take+write+sha256)"]
        print(
            f"  shard writer throughput = {100 * only:.0f} % of pyarrow's raw write "
            f"(target >= 50 %); end to end, reading the input too: {100 * stream:.0f} %"
        )
    if not args.no_smote:
        sec, n_syn = bench_mlsmote(args.smote_rows, args.labels, args.smote_dim, args.seed)
        print(
            f"\nMLSMOTE {args.smote_rows:,} rows x {args.smote_dim}-d x {args.labels} labels: "
            f"{sec:.1f} s, {n_syn:,} synthetic rows (target <= 60 s)"
        )
        sec, n_syn, smallest = bench_mlsmote_large_bags(args.smote_rows, args.smote_dim, args.seed)
        print(
            f"MLSMOTE {args.smote_rows:,} rows x {args.smote_dim}-d x 30 labels (minority "
            f"bags of {smallest:,}+ rows): {sec:.1f} s, {n_syn:,} synthetic rows "
            "(target <= 60 s)"
        )


if __name__ == "__main__":
    main()
