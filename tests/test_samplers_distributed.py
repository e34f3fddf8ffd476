"""Integration test: the samplers under ``torchrun --nproc_per_node 2`` (gloo, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

# Run by each of the two processes torchrun starts. num_replicas and rank are NOT given:
# the samplers must take them from the initialised process group.
WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyarrow as pa, pyarrow.parquet as pq
    import torch.distributed as dist
    from mlbalance.samplers import (
        ClassAwareSampler, RepeatFactorIterableDataset, RepeatFactorSampler, repeat_factors,
    )

    out_path, shard_dir = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    dense = (rng.random((501, 12)) < 0.4 / np.arange(1, 13)).astype(np.uint8)

    rfs = RepeatFactorSampler(dense, threshold=0.3, seed=3)
    rfs.set_epoch(2)
    cas = ClassAwareSampler(dense, num_samples=333, seed=3)
    cas.set_epoch(2)
    mine = {"rank": rank, "world": (rfs.num_replicas, rfs.rank, cas.num_replicas, cas.rank),
            "rfs": list(rfs), "rfs_len": len(rfs), "cas": list(cas), "cas_len": len(cas)}
    if rank == 0:
        ids = pa.array(np.arange(501))
        labels = pa.array([[str(j) for j in np.flatnonzero(r)] for r in dense])
        table = pa.table({"id": ids, "labels": labels})
        for k in range(3):
            pq.write_table(table.slice(167 * k, 167), f"{shard_dir}/p{k}.parquet",
                           row_group_size=42)
    dist.barrier()
    stream = RepeatFactorIterableDataset(shard_dir, threshold=0.3, seed=3, index_key="_row")
    stream.set_epoch(2)
    mine["stream"] = [r["_row"] for r in stream]
    gathered = [None] * world
    dist.all_gather_object(gathered, mine)
    if rank == 0:
        whole = RepeatFactorSampler(dense, threshold=0.3, seed=3, num_replicas=1, rank=0)
        whole.set_epoch(2)
        cas1 = ClassAwareSampler(dense, num_samples=333, seed=3, num_replicas=1, rank=0)
        cas1.set_epoch(2)
        counts = RepeatFactorIterableDataset(shard_dir, threshold=0.3, seed=3).epoch_counts(2)
        result = {"gathered": gathered, "rfs_epoch": list(whole), "cas_epoch": list(cas1),
                  "stream_counts": counts.tolist()}
        with open(out_path, "w") as fh:
            json.dump(result, fh)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    shard_dir = tmp_path / "shards"
    shard_dir.mkdir()
    out = tmp_path / "result.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLBALANCE_NO_PROGRESS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        str(script), str(out), str(shard_dir),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    g = sorted(result["gathered"], key=lambda d: d["rank"])
    assert [d["world"] for d in g] == [[2, 0, 2, 0], [2, 1, 2, 1]]

    # RepeatFactorSampler: equal lengths, exact __len__, ranks interleave to the padded epoch
    epoch = result["rfs_epoch"]
    a, b = g[0]["rfs"], g[1]["rfs"]
    assert len(a) == len(b) == g[0]["rfs_len"] == g[1]["rfs_len"] == (len(epoch) + 1) // 2
    merged = [x for pair in zip(a, b) for x in pair]
    assert merged[: len(epoch)] == epoch
    assert merged[len(epoch) :] == epoch[: len(merged) - len(epoch)]

    # ClassAwareSampler: 333 draws -> 167 per rank, the last one padding
    cas = result["cas_epoch"]
    c0, c1 = g[0]["cas"], g[1]["cas"]
    assert len(c0) == len(c1) == g[0]["cas_len"] == 167
    merged = [x for pair in zip(c0, c1) for x in pair]
    assert merged[:333] == cas and merged[333:] == cas[:1]

    # streaming: the two ranks together emit exactly the epoch's multiset
    counts = [0] * 501
    for d in g:
        for i in d["stream"]:
            counts[i] += 1
    assert counts == result["stream_counts"]
    assert g[0]["stream"] and g[1]["stream"]
    assert not set(g[0]["stream"]) & set(g[1]["stream"])  # a row lives in one row group
