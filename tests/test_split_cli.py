"""``mlbalance split`` end to end: files, vocabulary, report, groups, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbalance.cli import main
from mlbalance.io import read_labels, read_metadata
from mlbalance.synth import make_synthetic_table


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = make_synthetic_table(3000, 60, seed=1, text=False)
    rng = np.random.default_rng(1)
    table = table.append_column("doc", pa.array(rng.integers(0, 500, table.num_rows).astype(str)))
    path = tmp_path_factory.mktemp("data") / "data.parquet"
    pq.write_table(table, path)
    return path


def split(*args: str) -> int:
    return main(["split", *map(str, args)])


def ids_of(folder: Path, name: str) -> np.ndarray:
    return pq.read_table(folder / f"{name}.parquet", columns=["id"]).column("id").to_numpy()


def test_ratios_end_to_end(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert split(dataset, "--out", out, "--seed", 3) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "LD" in printed and "__mlbalance__/split_report.json" in printed
    names = ["train", "val", "test"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(f"{n}.parquet" for n in names), "__mlbalance__"]
    )
    src = pq.read_table(dataset)
    parts = [pq.read_table(out / f"{n}.parquet") for n in names]
    # every input row in exactly one split, every column kept untouched
    all_ids = np.concatenate([p.column("id").to_numpy() for p in parts])
    assert np.array_equal(np.sort(all_ids), np.sort(src.column("id").to_numpy()))
    for p in parts:
        assert p.column_names == src.column_names
    by_id = {i: k for k, i in enumerate(src.column("id").to_pylist())}
    for p in parts:
        rows = [by_id[i] for i in p.column("id").to_pylist()]
        assert p.column("labels").to_pylist() == src.take(rows).column("labels").to_pylist()
    assert [p.num_rows for p in parts] == [2400, 300, 300]
    # the vocabulary travels: every split knows all 60 labels, even ones it lacks
    vocab = read_labels(dataset).names
    for n in names:
        assert read_metadata(out / f"{n}.parquet")["labels"] == list(vocab)
        assert read_labels(out / f"{n}.parquet").names == vocab
    report = json.loads((out / "__mlbalance__/split_report.json").read_text())
    assert report["rows"] == 3000 and report["n_splits"] == 3
    assert [s["name"] for s in report["splits"]] == names
    assert report["FZ"] == 0 and report["ED"] < 1
    counts = np.array([report["label_counts"][n] for n in names])
    assert np.array_equal(counts.sum(axis=0), read_labels(dataset).counts())


def test_same_seed_same_split(dataset: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert split(dataset, "--out", a, "--ratios", "0.7,0.3", "--seed", 5) == 0
    assert split(dataset, "--out", b, "--ratios", "0.7,0.3", "--seed", 5) == 0
    assert split(dataset, "--out", c, "--ratios", "0.7,0.3", "--seed", 6) == 0
    assert np.array_equal(ids_of(a, "test"), ids_of(b, "test"))
    assert not np.array_equal(ids_of(a, "test"), ids_of(c, "test"))
    assert pq.read_table(a / "train.parquet").equals(pq.read_table(b / "train.parquet"))


def test_folds_order2_names_json(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "folds"
    code = split(
        dataset, "--out", out, "--folds", 4, "--order", 2, "--names", "a,b,c,d", "--json", "-"
    )
    assert code == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is only the JSON; the summary went to stderr
    assert "LD" in captured.err
    assert doc["order"] == 2 and doc["folds"] == 4
    assert list(doc["files"]) == ["a", "b", "c", "d"]
    assert sum(s["rows"] for s in doc["splits"]) == 3000
    assert {p.name for p in out.iterdir()} == {
        "a.parquet",
        "b.parquet",
        "c.parquet",
        "d.parquet",
        "__mlbalance__",
    }
    default = tmp_path / "default"
    assert split(dataset, "--out", default, "--folds", 3) == 0
    assert {p.stem for p in default.glob("*.parquet")} == {"fold-0", "fold-1", "fold-2"}


def test_groups_stay_together(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "g"
    assert split(dataset, "--out", out, "--groups", "doc", "--ratios", "0.8,0.2") == 0
    train = set(pq.read_table(out / "train.parquet").column("doc").to_pylist())
    test = set(pq.read_table(out / "test.parquet").column("doc").to_pylist())
    assert train and test and not train & test
    report = json.loads((out / "__mlbalance__/split_report.json").read_text())
    assert report["groups"]["column"] == "doc"
    assert sum(report["groups"]["per_split"].values()) == report["groups"]["n_groups"]


def test_csv_input_keeps_columns(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    rows = ["id,text,labels"] + [f"{i},t{i},{'a|b' if i % 3 else 'c'}" for i in range(30)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o"
    assert split(csv, "--out", out, "--label-sep", "|", "--ratios", "0.5,0.5") == 0
    t = pq.read_table(out / "train.parquet")
    assert t.column_names == ["id", "text", "labels"]
    assert read_labels(out / "test.parquet").names == ("a", "b", "c")


def test_ensure_eval_labels_says_what_it_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = make_synthetic_table(2000, 300, seed=2, text=False)
    data = tmp_path / "many.parquet"
    pq.write_table(table, data)
    out = tmp_path / "eval"
    assert split(data, "--out", out, "--ensure-eval-labels", "--json", "-") == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    evals = doc["repairs"]["ensure_eval_labels"]
    assert evals["requested"] and evals["moves"] == len(evals["moved"]) > 0
    assert f"evaluation labels: moved {evals['rows']} row(s) into" in captured.err
    for move in evals["moved"]:  # the moved row is in the split the report names
        ids = pq.read_table(out / f"{move['to']}.parquet", columns=["id"]).column("id")
        assert table.column("id")[move["row"]] in ids
        assert move["label"] in table.column("labels")[move["row"]].as_py()
    plain = tmp_path / "plain"
    assert split(data, "--out", plain, "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert not doc["repairs"]["ensure_eval_labels"]["requested"]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlbalance: error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ratios", "0.5,0.4"], "sum to 1"),
        (["--ratios", "0.5,0.6,-0.1"], "> 0"),
        (["--ratios", "1"], "at least 2"),
        (["--folds", "1"], "at least 2"),
        (["--folds", "4000"], "3000 rows into 4000"),
        (["--groups", "nope"], "no groups column 'nope'"),
        (["--names", "a,b"], "2 split names"),
        (["--names", "a,a,b"], "distinct"),
        (["--names", "x/y,a,b"], "file name"),
        (["--order", "2", "--ratios", "0.9,0.1,0.0"], "> 0"),
    ],
)
def test_bad_arguments(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "bad"
    assert split(dataset, "--out", out, *args) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()


def test_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(
        pa.table({"labels": [["a"], ["b"], ["a"], ["b"]], "g": ["x", None, "y", "z"]}), nulls
    )
    assert split(nulls, "--out", tmp_path / "o1", "--groups", "g", "--ratios", "0.5,0.5") == 2
    assert "null at row 1" in one_line_error(capsys)
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"labels": pa.array([], type=pa.list_(pa.string()))}), empty)
    assert split(empty, "--out", tmp_path / "o2") == 2
    assert "no rows" in one_line_error(capsys)
    assert split(tmp_path / "missing.parquet", "--out", tmp_path / "o3") == 2
    one_line_error(capsys)


def test_refuses_non_empty_output(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert split(dataset, "--out", out) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert (out / "keep.txt").read_text() == "mine"
    assert split(dataset, "--out", out, "--overwrite") == 0
    assert not (out / "keep.txt").exists() and (out / "train.parquet").exists()
    # never over the input
    assert split(dataset, "--out", dataset.parent, "--overwrite") == 2
    one_line_error(capsys)
    assert dataset.exists()


def test_goemotions(goemotions_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ge"
    code = split(
        goemotions_dir / "train.tsv",
        "--out",
        out,
        "--label-sep",
        ",",
        "--label-names",
        goemotions_dir / "labels.txt",
        "--header-names",
        "text,labels,id",
        "--folds",
        5,
        "--seed",
        0,
    )
    assert code == 0
    report = json.loads((out / "__mlbalance__/split_report.json").read_text())
    assert report["rows"] == 43410 and report["n_labels"] == 28
    assert report["FZ"] == 0 and report["FLZ"] == 0  # every label has >= 77 rows
    # no unlabelled rows to even out sizes: folds miss n/k by a few dozen rows, as iterstrat's
    assert max(abs(s["rows"] - 43410 / 5) for s in report["splits"]) <= 0.01 * 43410 / 5
    assert report["LD"] < 1e-3
    ids = np.concatenate(
        [
            pq.read_table(out / f"fold-{j}.parquet").column("id").to_numpy(zero_copy_only=False)
            for j in range(5)
        ]
    )
    assert len(set(ids)) == 43410


def test_mulan_arff_splits_carry_their_labels(shared_datasets: Path, tmp_path: Path) -> None:
    arff = shared_datasets / "mulan" / "medical" / "medical.arff"
    if not arff.exists():
        pytest.skip(f"{arff} not found")
    out = tmp_path / "med"
    assert split(arff, "--out", out, "--folds", 3) == 0
    source = read_labels(arff)
    parts = [read_labels(out / f"fold-{j}.parquet") for j in range(3)]
    assert all(p.names == source.names for p in parts)
    assert sum(p.n_rows for p in parts) == source.n_rows
    assert np.array_equal(sum(p.counts() for p in parts), source.counts())
