"""`mlbalance prepare`: split, resample train only, val/test untouched, one report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli
from mlbalance.io import read_labels

pytest.importorskip("mlbalance.split.files")


@pytest.fixture
def run_cli(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("prepare", "verify"))
    return lambda *argv: cli.main([str(a) for a in argv])


def _data(n: int = 2000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    p = 0.5 / (1 + np.arange(20)) ** 1.2
    Y = rng.random((n, 20)) < p
    Y[np.arange(n), rng.integers(0, 2, n)] = True
    return pa.table(
        {
            "id": np.arange(n),
            "text": [f"t{i}" for i in range(n)],
            "labels": [[f"L{j:02d}" for j in np.flatnonzero(r)] for r in Y],
        }
    )


def test_prepare_splits_and_resamples_train_only(run_cli, tmp_path, capsys):
    src = tmp_path / "all.parquet"
    pq.write_table(_data(), src)
    out = tmp_path / "prep"
    assert (
        run_cli(
            "prepare",
            src,
            "--ratios",
            "0.8,0.1,0.1",
            "--method",
            "ml-ros",
            "--out",
            out,
            "--seed",
            "1",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "train:" in text and "val: untouched" in text
    assert sorted(p.name for p in out.iterdir()) == ["__mlbalance__", "test", "train", "val"]
    report = json.loads((out / "__mlbalance__/prepare_report.json").read_text())
    assert report["method"] == "ml-ros" and report["split"]["rows"] == 2000
    val = pd.read_parquet(sorted((out / "val").glob("*.parquet")))
    test = pd.read_parquet(sorted((out / "test").glob("*.parquet")))
    train = pd.read_parquet(sorted((out / "train").glob("*.parquet")))
    # val/test untouched: no duplicates, disjoint from each other and from train
    assert val["id"].is_unique and test["id"].is_unique
    assert not set(val["id"]) & set(test["id"])
    assert not (set(train["id"]) & (set(val["id"]) | set(test["id"])))
    n_train = 2000 - len(val) - len(test)
    assert train["id"].nunique() == n_train and len(train) > n_train  # clones added
    assert report["resample"]["report"]["input_rows"] == n_train
    b, a = report["resample"]["measures_before"], report["resample"]["measures_after"]
    assert a["mean_ir"] < b["mean_ir"]
    # all splits share the label vocabulary
    assert read_labels(out / "val").names == read_labels(out / "train").names
    assert run_cli("verify", out / "train") == 0


def test_prepare_bad_ratios_writes_nothing(run_cli, tmp_path, capsys):
    src = tmp_path / "all.parquet"
    pq.write_table(_data(300), src)
    out = tmp_path / "prep"
    assert run_cli("prepare", src, "--ratios", "0.8,0.5", "--method", "ml-ros", "--out", out) == 2
    assert "mlbalance: error:" in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_prepare_json_stdout_only_json(run_cli, tmp_path, capsys):
    src = tmp_path / "all.parquet"
    pq.write_table(_data(400), src)
    assert (
        run_cli("prepare", src, "--method", "ml-ros", "--out", tmp_path / "p", "--json", "-") == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["method"] == "ml-ros"  # stdout holds only the JSON
    assert "train:" in captured.err


def test_prepare_mlsmote_on_feature_columns(run_cli, tmp_path, capsys):
    t = _data(600)
    rng = np.random.default_rng(0)
    for j in range(3):
        t = t.append_column(f"f{j}", pa.array(rng.normal(size=600)))
    pq.write_table(t, tmp_path / "all.parquet")
    out = tmp_path / "p"
    code = run_cli(
        "prepare", tmp_path / "all.parquet", "--method", "mlsmote", "--feature-prefix", "f",
        "--out", out, "--k", "3",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    train = pd.read_parquet(out / "train")
    syn = train[train["synthetic"]]
    assert len(syn) > 0 and syn[["f0", "f1", "f2"]].notna().all().all()
    assert syn["text"].isna().all()
    assert run_cli("verify", out / "train") == 0
