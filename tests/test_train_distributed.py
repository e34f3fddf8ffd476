"""``mlbalance train`` under torchrun: 2 CPU processes (gloo), the tiny BERT, a few seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_train import write_text_splits


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    from mlbalance.train.tiny import make_tiny_model

    paths = write_text_splits(tmp_path / "data")
    corpus = pq.read_table(paths["train"]).column("text").to_pylist()
    model = make_tiny_model(
        tmp_path / "tiny", corpus, vocab_size=600, hidden_size=32, num_layers=2, num_heads=2
    )
    out = tmp_path / "model"
    env = dict(
        os.environ, OMP_NUM_THREADS="1", MLBALANCE_NO_PROGRESS="1", TOKENIZERS_PARALLELISM="false"
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mlbalance",
        "train",
        "--train",
        str(paths["train"]),
        "--val",
        str(paths["val"]),
        "--test",
        str(paths["test"]),
        "--model",
        str(model),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--max-length",
        "32",
        "--sampler",
        "repeat-factor",
        "--rfs-threshold",
        "0.1",
        "--loss",
        "asl",
        "--json",
        str(tmp_path / "summary.json"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # only rank 0 prints the summary and writes
    assert proc.stdout.count("mlbalance train:") == 1
    assert (out / "model.safetensors").is_file() and (out / "thresholds.json").is_file()
    summary = json.loads((tmp_path / "summary.json").read_text())
    # scores of both ranks were gathered: every val and test row is evaluated once
    assert summary["metrics"]["val"]["n_rows"] == 72
    assert summary["metrics"]["test"]["n_rows"] == 72
    # the sampler shards per rank: each process takes half of the epoch's rows
    train_rows = 216
    steps = summary["history"][0]["step"]
    assert steps < train_rows / 16  # a single process would take >= 14 steps per epoch
    assert len(summary["history"]) == 1
    assert not (tmp_path / "model.ckpt").exists()


@pytest.mark.slow
def test_torchrun_k_fold(tmp_path):
    """train --folds under torchrun: one process group for all folds (re-joining per fold
    raced), rank 0 alone logs, prints and writes the output."""
    from mlbalance.io import LabelSpec, write_parquet
    from mlbalance.split.files import split_to_folder
    from test_train import embedding_table

    table, names = embedding_table(320, 6, 8, 0)
    write_parquet(table, tmp_path / "all.parquet", labels=names, spec=LabelSpec())
    split_to_folder(tmp_path / "all.parquet", tmp_path / "folds", folds=3, seed=0)
    env = dict(os.environ, OMP_NUM_THREADS="1", MLBALANCE_NO_PROGRESS="1")
    out = tmp_path / "cv"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "mlbalance", "train", "--folds", str(tmp_path / "folds"), "--out",
           str(out), "--epochs", "1", "--threshold-cv", "2", "--json", "-"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["n_folds"] == 3  # one JSON document: rank 0's
    assert proc.stderr.count("fold 3/3:") == 1
    assert sorted(p.name for p in out.iterdir()) == ["fold-0", "fold-1", "fold-2", "folds.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
