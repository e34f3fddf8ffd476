"""`mlbalance resample` / `mlbalance verify`: shards, manifest, atomicity, loading elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli
from mlbalance.io import read_labels
from mlbalance.io.shards import MANIFEST
from mlbalance.resample.dataset import looks_like_evaluation


@pytest.fixture
def run_cli(monkeypatch):
    """``mlbalance`` main() with only this stage's commands registered (others may be absent)."""
    monkeypatch.setattr(cli, "COMMANDS", ("resample", "verify"))

    def run(*argv: str) -> int:
        return cli.main([str(a) for a in argv])

    return run


def _long_tail(n: int = 3000, seed: int = 0, dim: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n_labels = 30
    p = 0.4 / (1 + np.arange(n_labels)) ** 1.3
    Y = rng.random((n, n_labels)) < p
    Y[np.arange(n), rng.integers(0, 3, n)] = True
    labels = [[f"L{j:02d}" for j in np.flatnonzero(row)] for row in Y]
    cols = {
        "id": np.arange(n),
        "text": [f"row {i} " + "x" * int(rng.integers(5, 40)) for i in range(n)],
        "labels": labels,
    }
    table = pa.table(cols)
    if dim:
        emb = rng.normal(size=(n, dim)).astype(np.float32)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), dim)
        table = table.append_column("embedding", arr.cast(pa.list_(pa.float32())))
    return table


@pytest.fixture
def train_file(tmp_path) -> Path:
    path = tmp_path / "train.parquet"
    pq.write_table(_long_tail(), path)
    return path


def _shards(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.parquet"))


def test_ml_ros_shards_and_manifest(run_cli, train_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run_cli(
            "resample",
            train_file,
            "--method",
            "ml-ros",
            "--out",
            out,
            "--rows-per-shard",
            "1000",
            "--seed",
            "3",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "mean_ir" in text and "ml-ros" in text
    manifest = json.loads((out / MANIFEST).read_text())
    for key in (
        "labels",
        "method",
        "parameters",
        "seed",
        "mlbalance_version",
        "label_counts_before",
        "label_counts_after",
        "measures_before",
        "measures_after",
        "shards",
    ):
        assert key in manifest
    for side in ("measures_before", "measures_after"):
        assert {"mean_ir", "max_ir", "scumble"} <= set(manifest[side])
    assert manifest["measures_after"]["mean_ir"] < manifest["measures_before"]["mean_ir"]
    assert manifest["method"] == "ml-ros" and manifest["seed"] == 3
    assert manifest["parameters"] == {"percentage": 25.0}
    n_out = manifest["rows"]
    assert 3000 < n_out <= 3000 + 750  # at most P = 25 % of 3000 clones
    assert manifest["report"]["extra_copies"] == n_out - 3000
    k = -(-n_out // 1000)
    names = [s["file"] for s in manifest["shards"]]
    assert names == [f"part-{i:05d}-of-{k:05d}.parquet" for i in range(k)]
    assert [s["rows"] for s in manifest["shards"]] == [1000] * (k - 1) + [n_out - 1000 * (k - 1)]
    # every input column kept; each output row is an input row with its own text and labels
    src = pq.read_table(train_file).to_pandas()
    got = pd.read_parquet(_shards(out))
    assert list(got.columns) == list(src.columns)
    by_id = src.set_index("id")
    assert (got["text"].to_numpy() == by_id.loc[got["id"], "text"].to_numpy()).all()
    assert all(list(a) == list(b) for a, b in zip(got["labels"], by_id.loc[got["id"], "labels"]))
    assert set(src["id"]) == set(got["id"])  # no row dropped by oversampling
    # the counts in the manifest are those of the shards
    lm = read_labels(out)
    assert dict(zip(lm.names, lm.counts().tolist())) == manifest["label_counts_after"]
    assert lm.names == tuple(manifest["labels"])


def test_shards_load_with_pyarrow_pandas_and_datasets(run_cli, train_file, tmp_path):
    out = tmp_path / "out"
    assert (
        run_cli(
            "resample", train_file, "--method", "ml-rus", "--out", out, "--rows-per-shard", "800"
        )
        == 0
    )
    files = _shards(out)
    n = json.loads((out / MANIFEST).read_text())["rows"]
    assert pads.dataset(files, format="parquet").count_rows() == n
    assert pads.dataset(str(out), format="parquet", exclude_invalid_files=True).count_rows() == n
    assert len(pd.read_parquet(files)) == n
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet", data_files=str(out / "*.parquet"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == n and set(ds.column_names) == {"id", "text", "labels"}


def test_same_seed_same_bytes(run_cli, train_file, tmp_path):
    for name in ("a", "b"):
        assert (
            run_cli(
                "resample",
                train_file,
                "--method",
                "target",
                "--min-rows",
                "40",
                "--max-rows",
                "900",
                "--out",
                tmp_path / name,
                "--seed",
                "9",
            )
            == 0
        )
    a = json.loads((tmp_path / "a" / MANIFEST).read_text())
    b = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    assert (
        run_cli(
            "resample",
            train_file,
            "--method",
            "target",
            "--min-rows",
            "40",
            "--out",
            tmp_path / "c",
            "--seed",
            "10",
        )
        == 0
    )


def test_verify_detects_changes(run_cli, train_file, tmp_path, capsys):
    out = tmp_path / "out"
    run_cli("resample", train_file, "--method", "ml-ros", "--out", out, "--rows-per-shard", "2000")
    assert run_cli("verify", out) == 0
    assert "OK" in capsys.readouterr().out
    first = out / "part-00000-of-00002.parquet"
    t = pq.read_table(first)
    pq.write_table(t.slice(1), first)  # a row lost
    assert run_cli("verify", out, "--json", tmp_path / "v.json") == 1
    report = json.loads((tmp_path / "v.json").read_text())
    assert not report["ok"] and any("sha256" in p for p in report["problems"])
    first.unlink()
    assert run_cli("verify", out) == 1
    assert "missing" in capsys.readouterr().out


def test_verify_detects_extra_shard_and_counts(run_cli, train_file, tmp_path, capsys):
    out = tmp_path / "out"
    run_cli("resample", train_file, "--method", "ml-ros", "--out", out)
    pq.write_table(pq.read_table(train_file), out / "part-00009-of-00009.parquet")
    assert run_cli("verify", out) == 1
    assert "not listed" in capsys.readouterr().out
    (out / "part-00009-of-00009.parquet").unlink()
    m = json.loads((out / MANIFEST).read_text())
    m["label_counts_after"]["L00"] += 1
    (out / MANIFEST).write_text(json.dumps(m))
    assert run_cli("verify", out) == 1
    assert "label counts differ" in capsys.readouterr().out
    assert run_cli("verify", out, "--quick") == 0


def test_refuses_non_empty_output_and_writes_nothing_on_error(
    run_cli, train_file, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert run_cli("resample", train_file, "--method", "ml-ros", "--out", out) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    bad = tmp_path / "bad"
    assert (
        run_cli("resample", train_file, "--method", "ml-ros", "--percentage", "150", "--out", bad)
        == 2
    )
    err = capsys.readouterr().err
    assert "--percentage must be a number in (0, 100]" in err and "Traceback" not in err
    assert not bad.exists()
    assert (
        run_cli("resample", train_file, "--method", "ml-ros", "--min-rows", "5", "--out", bad) == 2
    )
    assert "does not use --min-rows" in capsys.readouterr().err
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left
    assert run_cli("resample", train_file, "--method", "ml-ros", "--out", out, "--overwrite") == 0
    assert (out / MANIFEST).is_file() and not (out / "keep.txt").exists()


def test_nothing_to_do(run_cli, tmp_path, capsys):
    path = tmp_path / "flat.parquet"
    pq.write_table(
        pa.table({"text": ["a", "b", "c", "d"], "labels": [["x"], ["y"], ["x"], ["y"]]}), path
    )
    out = tmp_path / "out"
    assert run_cli("resample", path, "--method", "ml-ros", "--out", out) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not out.exists()


def test_warns_on_evaluation_data(run_cli, tmp_path, capsys):
    path = tmp_path / "dev.parquet"
    pq.write_table(_long_tail(400), path)
    assert run_cli("resample", path, "--method", "ml-ros", "--out", tmp_path / "o") == 0
    assert "looks like evaluation data" in capsys.readouterr().err
    assert looks_like_evaluation("data/test/part-0.parquet")
    assert looks_like_evaluation("goemotions/dev.tsv") and looks_like_evaluation("x_valid.csv")
    assert not looks_like_evaluation("data/train.parquet")
    assert not looks_like_evaluation("contest/latest.parquet")


def test_remedial_rewrites_labels_and_marks_source(run_cli, train_file, tmp_path):
    out = tmp_path / "out"
    assert run_cli("resample", train_file, "--method", "remedial", "--out", out) == 0
    got = pd.read_parquet(_shards(out))
    src = pq.read_table(train_file).to_pandas()
    assert "source_row" in got.columns
    # a decoupled row appears twice; its two label sets split the source row's labels
    dup = got[got["source_row"].duplicated(keep=False)]
    assert len(dup) > 0
    for row, group in dup.groupby("source_row"):
        parts = [set(x) for x in group["labels"]]
        assert len(parts) == 2 and not (parts[0] & parts[1])
        assert parts[0] | parts[1] == set(src["labels"][row])
        assert (group["text"] == src["text"][row]).all()
    m = json.loads((out / MANIFEST).read_text())
    assert m["report"]["relabelled"] == 2 * m["report"]["extra_copies"]
    assert cli.main(["verify", str(out)]) == 0


def test_remedial_on_csv_with_delimited_labels(run_cli, tmp_path):
    t = _long_tail(1500, seed=4).to_pandas()
    t["labels"] = ["|".join(x) for x in t["labels"]]
    path = tmp_path / "train.csv"
    t.to_csv(path, index=False)
    out = tmp_path / "out"
    assert run_cli("resample", path, "--label-sep", "|", "--method", "remedial", "--out", out) == 0
    got = pd.read_parquet(_shards(out))  # labels written as lists of names, not 'a|b'
    assert got["labels"].map(lambda s: all(isinstance(x, str) and "|" not in x for x in s)).all()
    lm = read_labels(out)
    m = json.loads((out / MANIFEST).read_text())
    assert dict(zip(lm.names, lm.counts().tolist())) == m["label_counts_after"]


def test_mlsmote_on_embedding_column(run_cli, tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(_long_tail(1500, seed=1, dim=8), path)
    out = tmp_path / "out"
    assert run_cli("resample", path, "--method", "mlsmote", "--k", "3", "--out", out) == 0
    got = pd.read_parquet(_shards(out))
    syn = got[got["synthetic"]]
    real = got[~got["synthetic"]]
    assert len(real) == 1500 and len(syn) > 0
    assert syn["text"].isna().all() and syn["id"].isna().all()
    assert real["neighbour_row"].isna().all()
    assert (real["source_row"].to_numpy() == np.arange(1500)).all()
    emb = np.stack(got["embedding"].to_numpy())
    s = emb[syn["source_row"].to_numpy().astype(int)]
    nb = emb[syn["neighbour_row"].to_numpy().astype(int)]
    e = np.stack(syn["embedding"].to_numpy())
    assert ((e >= np.minimum(s, nb) - 1e-6) & (e <= np.maximum(s, nb) + 1e-6)).all()
    m = json.loads((out / MANIFEST).read_text())
    assert m["measures_after"]["mean_ir"] < m["measures_before"]["mean_ir"]
    assert m["columns_added"] == ["synthetic", "source_row", "neighbour_row"]
    assert cli.main(["verify", str(out)]) == 0


def test_mlsmote_bad_features(run_cli, tmp_path, capsys):
    path = tmp_path / "train.parquet"
    t = _long_tail(300, seed=1, dim=4)
    pq.write_table(t, path)
    assert (
        run_cli(
            "resample", path, "--method", "mlsmote", "--features", "vec", "--out", tmp_path / "o"
        )
        == 2
    )
    assert "no feature column 'vec'" in capsys.readouterr().err
    bad = t.column("embedding").to_pylist()
    bad[7][2] = float("nan")
    t2 = t.set_column(3, "embedding", pa.array(bad, pa.list_(pa.float32())))
    pq.write_table(t2, path)
    assert run_cli("resample", path, "--method", "mlsmote", "--out", tmp_path / "o") == 2
    assert "column 'embedding', row 7: embedding holds NaN" in capsys.readouterr().err
    t3 = t.set_column(3, "embedding", pa.array(["a"] * 300))
    pq.write_table(t3, path)
    assert run_cli("resample", path, "--method", "mlsmote", "--out", tmp_path / "o") == 2
    assert "must hold float lists, found string" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_json_stdout(run_cli, train_file, tmp_path, capsys):
    assert (
        run_cli(
            "resample", train_file, "--method", "ml-ros", "--out", tmp_path / "o", "--json", "-"
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] > 3000 and len(data["shards"]) == 1


def test_goemotions_ids_with_names_file(run_cli, goemotions_dir, tmp_path):
    """Real text, label ids joined by ',' with a names file: every output row holds its
    labels as a list of names (copies and REMEDIAL's relabelled rows alike)."""
    src = goemotions_dir / "train.tsv"
    flags = [
        "--header-names",
        "text,labels,id",
        "--label-sep",
        ",",
        "--label-names",
        str(goemotions_dir / "labels.txt"),
    ]
    out = tmp_path / "ros"
    assert run_cli("resample", src, *flags, "--method", "ml-ros", "--out", out) == 0
    got = pd.read_parquet(_shards(out))
    src_df = pd.read_csv(
        src, sep="\t", names=["text", "labels", "id"], dtype=str, quoting=3, keep_default_na=False
    )
    by_id = src_df.set_index("id")
    sample = got.sample(500, random_state=0)
    assert (sample["text"].to_numpy() == by_id.loc[sample["id"], "text"].to_numpy()).all()
    names = (goemotions_dir / "labels.txt").read_text().split()
    want = [sorted(names[int(i)] for i in c.split(",")) for c in by_id.loc[sample["id"], "labels"]]
    assert [sorted(x) for x in sample["labels"]] == want
    m = json.loads((out / MANIFEST).read_text())
    assert m["measures_after"]["mean_ir"] < m["measures_before"]["mean_ir"]
    out2 = tmp_path / "rem"
    assert run_cli("resample", src, *flags, "--method", "remedial", "--out", out2) == 0
    rem = pd.read_parquet(_shards(out2))
    assert rem["labels"].map(lambda r: set(r) <= set(names)).all()
    assert cli.main(["verify", str(out2)]) == 0
