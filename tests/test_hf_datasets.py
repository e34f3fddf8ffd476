"""mlbalance.hf datasets helpers, with the real ``datasets`` library.

``mlbalance split`` and ``resample`` outputs load with ``datasets.load_dataset("parquet")``
(``data_dir=`` and ``data_files=``) with the side files in place and the label names kept;
``load_split`` keeps the vocabulary as a ``ClassLabel`` feature; the stratified
``train_test_split`` accounts for every row, is deterministic per seed and keeps the labels
on both sides.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from mlbalance.cli import main  # noqa: E402
from mlbalance.errors import MlbalanceError, ParameterError  # noqa: E402
from mlbalance.hf import label_matrix, load_split, train_test_split  # noqa: E402
from mlbalance.io import read_labels, read_metadata, write_parquet  # noqa: E402
from mlbalance.io.spec import LabelSpec  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet_datasets():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """A split folder and a resampled shard folder written by the CLI."""
    from mlbalance.synth import label_names, make_synthetic_table

    root = tmp_path_factory.mktemp("hfdata")
    table = make_synthetic_table(300, 10, 0, words_per_row=6)
    data = root / "data.parquet"
    write_parquet(table, data, labels=label_names(10), spec=LabelSpec())
    assert main(["split", str(data), "--out", str(root / "splits"), "--seed", "0"]) == 0
    train = root / "splits" / "train.parquet"
    args = ["resample", str(train), "--method", "ml-ros", "--out", str(root / "shards")]
    assert main([*args, "--rows-per-shard", "60", "--seed", "0"]) == 0
    return {"data": data, "splits": root / "splits", "shards": root / "shards"}


# ------------------------------------------------------------------ load_dataset as it is
def test_load_dataset_data_dir_reads_a_split_folder(outputs, tmp_path):
    splits = outputs["splits"]
    assert (splits / "__mlbalance__" / "split_report.json").is_file()
    got = datasets.load_dataset("parquet", data_dir=str(splits), cache_dir=str(tmp_path))
    assert sorted(got) == ["test", "train", "validation"]
    for name, file in (("train", "train"), ("validation", "val"), ("test", "test")):
        want = read_labels(splits / f"{file}.parquet").to_lists()
        assert [sorted(r) for r in list(got[name]["labels"])] == [sorted(r) for r in want]


def test_load_dataset_reads_shards_beside_their_manifest(outputs, tmp_path):
    shards = outputs["shards"]
    assert (shards / "__mlbalance__" / "manifest.json").is_file()
    want = read_labels(shards)
    for kw in ({"data_dir": str(shards)}, {"data_files": str(shards / "*.parquet")}):
        got = datasets.load_dataset("parquet", cache_dir=str(tmp_path), **kw)
        assert list(got) == ["train"]
        assert got["train"].num_rows == want.n_rows
        names = {n for row in list(got["train"]["labels"]) for n in row}
        assert names <= set(want.names) and len(names) > 1  # names, not ids


# ------------------------------------------------------------------ load_split
def test_load_split_keeps_the_vocabulary_as_class_labels(outputs):
    splits = outputs["splits"]
    got = load_split(splits)
    assert list(got) == ["train", "val", "test"]
    vocabulary = read_metadata(splits / "train.parquet")["labels"]
    for name in got:
        feature = got[name].features["labels"]
        assert feature.feature.names == vocabulary  # every split, with or without each label
        want = read_labels(splits / f"{name}.parquet").to_lists()
        assert label_matrix(got[name]).to_lists() == want
    assert label_matrix(got["test"]).names == tuple(vocabulary)
    # the feature survives map / select
    mapped = got["train"].map(lambda b: {"n": [len(t) for t in b["text"]]}, batched=True)
    assert mapped.select([0, 1]).features["labels"].feature.names == vocabulary


def test_load_split_of_a_shard_folder_is_one_train_split(outputs):
    got = load_split(outputs["shards"], class_label=False)
    want = read_labels(outputs["shards"])
    assert list(got) == ["train"]
    assert got["train"].num_rows == want.n_rows
    assert list(got["train"]["labels"]) == want.to_lists()


def test_load_split_gives_every_split_the_union_vocabulary(tmp_path):
    """A label only a later split has: every split is cast to the same (union) vocabulary."""
    import pyarrow as pa

    rows = {"train": (["a"], ["b"]), "val": (["a"], ["c"]), "test": (["b"], ["d"])}
    stored = {"train": ["b", "a"], "val": ["a", "b", "c"], "test": ["d", "b"]}
    for split, labels in rows.items():
        table = pa.table({"text": ["x", "y"], "labels": list(labels)})
        write_parquet(table, tmp_path / f"{split}.parquet", labels=stored[split], spec=LabelSpec())
    got = load_split(tmp_path)
    for split in rows:
        assert got[split].features["labels"].feature.names == ["b", "a", "c", "d"], split
        assert label_matrix(got[split]).to_lists() == [list(r) for r in rows[split]]


def test_load_split_refuses_a_missing_folder(tmp_path):
    with pytest.raises(MlbalanceError, match="no such"):
        load_split(tmp_path / "nope")


# ------------------------------------------------------------------ train_test_split
def test_train_test_split_stratifies_deterministically(outputs):
    ds = load_split(outputs["data"])["data"]
    y = label_matrix(ds)
    a = train_test_split(ds, test_size=0.3, seed=3, ensure_eval_labels=True)
    b = train_test_split(ds, test_size=0.3, seed=3, ensure_eval_labels=True)
    assert list(a["train"]["id"]) == list(b["train"]["id"]) and list(a["test"]["id"]) == list(
        b["test"]["id"]
    )
    ids = list(a["train"]["id"]) + list(a["test"]["id"])
    assert sorted(ids) == sorted(list(ds["id"]))  # every row once
    assert abs(a["test"].num_rows - 0.3 * ds.num_rows) <= 2
    train_counts = label_matrix(a["train"]).counts()
    test_counts = label_matrix(a["test"]).counts()
    enough = y.counts() >= 2
    assert (test_counts[enough] >= 1).all() and (train_counts[enough] >= 1).all()
    # stratified: each label's test share is close to 0.3 where it has rows to share
    share = test_counts / np.maximum(y.counts(), 1)
    assert np.abs(share[y.counts() >= 20] - 0.3).max() < 0.1
    c = train_test_split(ds, test_size=0.3, seed=4)
    assert list(c["test"]["id"]) != list(a["test"]["id"])


def test_train_test_split_on_names_and_multi_hot(outputs, tmp_path):
    ds = datasets.load_dataset("parquet", data_files=str(outputs["data"]), cache_dir=str(tmp_path))[
        "train"
    ]
    got = train_test_split(ds, test_size=0.25, seed=0)
    assert got["train"].num_rows + got["test"].num_rows == ds.num_rows
    vocabulary = read_metadata(outputs["data"])["labels"]
    dense = label_matrix(ds, label_names=vocabulary).to_dense().tolist()
    hot = datasets.Dataset.from_dict({"labels": dense})
    with pytest.raises(ParameterError) as err:
        train_test_split(hot, seed=0)
    assert err.value.params == ("label_names",)
    split = train_test_split(hot, test_size=0.25, seed=0, label_names=vocabulary)
    assert split["test"].num_rows == got["test"].num_rows


# ------------------------------------------------------------------ the optional import
def test_import_is_light_and_a_missing_package_is_one_line(monkeypatch):
    code = (
        "import sys, mlbalance.hf; "
        "bad = [m for m in ('datasets', 'transformers', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from mlbalance.hf._require import require

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MlbalanceError, match=r"pip install \"mlbalance\[hf\]\""):
        require("datasets")


def test_a_legacy_manifest_beside_the_shards_needs_the_data_files_glob(outputs, tmp_path):
    """mlbalance 0.1 wrote manifest.json beside the shards: data_dir= reads it as Parquet and
    fails, the documented data_files= glob and load_split read the folder."""
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(outputs["shards"], legacy)
    (legacy / "__mlbalance__" / "manifest.json").rename(legacy / "manifest.json")
    (legacy / "__mlbalance__").rmdir()
    n_rows = read_labels(outputs["shards"]).n_rows
    cache = str(tmp_path / "cache")
    with pytest.raises(Exception, match=r"manifest\.json|Parquet"):
        datasets.load_dataset("parquet", data_dir=str(legacy), cache_dir=cache)
    got = datasets.load_dataset("parquet", data_files=str(legacy / "*.parquet"), cache_dir=cache)
    assert got["train"].num_rows == n_rows
    assert load_split(legacy)["train"].num_rows == n_rows


# ------------------------------------------------------------------ label coding errors
def test_a_bad_label_id_is_reported_as_it_is():
    """The offending id is named, a negative one too (was the row's largest id)."""
    from mlbalance.errors import InputError
    from mlbalance.hf._labels import LabelCoding

    coding = LabelCoding("ids", ("a", "b", "c"))
    assert coding.encode([0, 2]).tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(InputError, match=r"label id -1 is outside the 3 labels"):
        coding.encode([-1, 1])
    with pytest.raises(InputError, match=r"label id 3 is outside"):
        coding.encode([1, 3])


def test_ragged_multi_hot_rows_are_one_input_error():
    from mlbalance.errors import InputError

    ds = datasets.Dataset.from_dict({"labels": [[0, 1, 0], [1, 0], [0, 0, 1]]})
    with pytest.raises(InputError, match=r"^row 1: multi-hot labels of length 2, expected 3"):
        label_matrix(ds, label_names=["a", "b", "c"])
    square = datasets.Dataset.from_dict({"labels": [[0, 1], [1, 0]]})
    with pytest.raises(InputError, match=r"^row 0: multi-hot labels of length 2, expected 3"):
        label_matrix(square, label_names=["a", "b", "c"])
    assert label_matrix(square, label_names=["a", "b"]).to_lists() == [["b"], ["a"]]
