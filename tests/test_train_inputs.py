"""What train, evaluate and predict read and write: encodings, numeric feature columns (and
MULAN ARFF features) for a head, and a predictions file that keeps the format contracts.

A head on numeric columns trains in a second on CPU, so every test here runs the real
commands end to end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.cli import main  # noqa: E402
from mlbalance.io import LabelSpec, read_labels  # noqa: E402

FEATURES = ("f1", "f2", "f3", "f4")
NAMES = ("anger", "joy", "calm")


# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _feature_rows(n: int, seed: int) -> pa.Table:
    """A note (non-ASCII text), four numeric features that carry the labels, ``a|b`` labels."""
    rng = np.random.default_rng(seed)
    projection = np.random.default_rng(42).normal(size=(len(NAMES), len(FEATURES)))  # all splits
    y = rng.random((n, len(NAMES))) < np.array([0.5, 0.35, 0.2])
    x = y @ projection * 2 + 0.3 * rng.normal(size=(n, len(FEATURES)))
    notes = [f"café n°{i} - {'été' if i % 2 else 'hiver'}" for i in range(n)]
    labels = ["|".join(NAMES[j] for j in np.flatnonzero(row)) for row in y]
    cols = {"note": notes, **{f: x[:, j] for j, f in enumerate(FEATURES)}, "labels": labels}
    return pa.table(cols)


def _write_csv(table: pa.Table, path: Path, encoding: str = "utf-8") -> Path:
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink)
    path.write_bytes(sink.getvalue().to_pybytes().decode("utf-8").encode(encoding))
    return path


@pytest.fixture(scope="module")
def latin1(tmp_path_factory) -> dict[str, Path]:
    """Train/val/test CSVs in latin-1 (not UTF-8) and a head trained on their feature columns
    through the CLI, with ``--encoding latin-1``."""
    folder = tmp_path_factory.mktemp("latin1")
    data = folder / "data"
    data.mkdir()
    paths = {
        split: _write_csv(_feature_rows(n, seed), data / f"{split}.csv", "latin-1")
        for split, n, seed in (("train", 300, 0), ("val", 120, 1), ("test", 90, 2))
    }
    paths["model"] = folder / "model"
    argv = ["train", "--train", str(paths["train"]), "--val", str(paths["val"]),
            "--feature-columns", ",".join(FEATURES), "--label-sep", "|", "--encoding",
            "latin-1", "--out", str(paths["model"]), "--epochs", "4", "--head-lr", "0.05"]  # fmt: skip
    assert main(argv) == 0
    return paths


# ----------------------------------------------------------------------------- encodings
def test_train_evaluate_predict_read_a_latin1_file_with_encoding(latin1, tmp_path, capsys):
    args = json.loads((latin1["model"] / "training_args.json").read_text())
    assert args["encoding"] == "latin-1" and args["features"] == {"feature_columns": [*FEATURES]}
    report = tmp_path / "e.json"
    assert main(["evaluate", "--model", str(latin1["model"]), "--data", str(latin1["test"]),
                 "--encoding", "latin-1", "--json", str(report)]) == 0  # fmt: skip
    metrics = json.loads(report.read_text())
    assert metrics["rows"] == 90 and metrics["metrics"]["micro_f1"] > 0.8  # all-positive: 0.52
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(latin1["model"]), "--data", str(latin1["test"]),
                 "--encoding", "latin-1", "--out", str(out)]) == 0  # fmt: skip
    notes = pq.read_table(out).column("note").to_pylist()
    assert notes[1] == "café n°1 - été"  # decoded as latin-1, not mojibake
    capsys.readouterr()


def test_the_training_encoding_is_not_applied_to_other_files(latin1, tmp_path, capsys):
    """The model does not pass its data's encoding on: a latin-1 file read as UTF-8 fails with
    the one line naming the byte, instead of being guessed (a wrong guess is silent)."""
    assert main(["evaluate", "--model", str(latin1["model"]), "--data", str(latin1["test"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "test.csv: line 2" in err and "--encoding" in err


# ----------------------------------------------------------------------------- predictions
def _read_meta(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[b"mlbalance"])


def test_predict_output_keeps_the_contracts_from_another_directory(latin1, tmp_path, monkeypatch):
    """Relative paths from another working directory; labels parsed once with the model's
    layout (``a|b`` -> names); the vocabulary in the metadata; no path anywhere."""
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    utf8 = _write_csv(_feature_rows(90, 2), tmp_path / "data" / "new.csv")
    monkeypatch.chdir(tmp_path / "elsewhere")
    model = os.path.relpath(latin1["model"])  # ../../latin1.../model
    report = Path("r.json")
    assert main(["predict", "--model", model, "--data", "../data/new.csv",
                 "--out", "p.parquet", "--json", str(report)]) == 0  # fmt: skip
    meta = _read_meta(Path("p.parquet"))
    raw = pq.read_schema("p.parquet").metadata[b"mlbalance"].decode()
    assert str(tmp_path) not in raw and "/" not in raw and ".." not in raw
    assert meta["labels"] == sorted(NAMES) and meta["label_spec"]["column"] == "labels"
    assert meta["predictions"]["model"] == "model" and meta["predictions"]["labels"] == sorted(
        NAMES
    )
    assert not [k for k in pq.read_schema("p.parquet").metadata if k != b"mlbalance"]
    table = pq.read_table("p.parquet")
    assert table.schema.field("labels").type == pa.list_(pa.string())
    assert table.schema.field("predicted_labels").type == pa.list_(pa.string())
    expected = read_labels(utf8, LabelSpec(sep="|"))
    written = read_labels("p.parquet")  # no flags: the stored layout
    assert written.to_lists() == expected.to_lists()
    assert json.loads(report.read_text())["out"] == "p.parquet"
    assert str(tmp_path) not in report.read_text()


def test_predict_on_data_without_labels_stores_the_predicted_ones(latin1, tmp_path):
    data = _write_csv(_feature_rows(40, 3).drop_columns(["labels"]), tmp_path / "new.csv")
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(latin1["model"]), "--data", str(data),
                 "--out", str(out)]) == 0  # fmt: skip
    meta = _read_meta(out)
    assert meta["label_spec"]["column"] == "predicted_labels" and meta["labels"] == sorted(NAMES)
    table = pq.read_table(out)
    assert read_labels(out).to_lists() == table.column("predicted_labels").to_pylist()


def test_predict_keeps_the_stored_labels_of_mlbalance_parquet(latin1, tmp_path):
    from mlbalance.io import write_parquet

    rows = _feature_rows(40, 4)
    src = tmp_path / "new.parquet"
    write_parquet(rows, src, labels=["calm", "zeal"], spec=LabelSpec(sep="|"))
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(latin1["model"]), "--data", str(src),
                 "--out", str(out)]) == 0  # fmt: skip
    meta = _read_meta(out)
    # the data's vocabulary first (its label ids), then the model's labels it lacks
    assert meta["labels"] == ["calm", "zeal", "anger", "joy"]
    assert read_labels(out).to_lists() == read_labels(src).to_lists()


# ----------------------------------------------------------------------------- features
def test_evaluate_and_predict_reuse_the_feature_columns_by_name(latin1, tmp_path):
    """Columns in another order, and more of them: the recorded names decide, not positions."""
    from mlbalance.train.model_folder import load_predictor

    table = _feature_rows(50, 5)
    shuffled = table.select(["labels", "f3", "note", "f1", "f4", "f2"]).append_column(
        "f5", pa.array(np.ones(50))
    )
    a, b = tmp_path / "a.parquet", tmp_path / "b.csv"
    pq.write_table(table.drop_columns(["note"]), a)
    _write_csv(shuffled, b)
    for data in (a, b):
        assert main(["predict", "--model", str(latin1["model"]), "--data", str(data),
                     "--out", str(data.with_suffix(".p.parquet"))]) == 0  # fmt: skip
    first = pq.read_table(a.with_suffix(".p.parquet")).column("scores").to_pylist()
    second = pq.read_table(b.with_suffix(".p.parquet")).column("scores").to_pylist()
    np.testing.assert_allclose(first, second, atol=1e-6)
    predictor = load_predictor(latin1["model"])
    assert predictor.predict(shuffled) == predictor.predict(np.column_stack(
        [table.column(f).to_numpy() for f in FEATURES]))  # fmt: skip


def test_a_text_column_given_to_a_head_is_refused(latin1, capsys):
    assert main(["predict", "--model", str(latin1["model"]), "--data", str(latin1["test"]),
                 "--text-column", "note", "--out", "x.parquet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--text-column 'note' is not used" in err and "4 feature column(s)" in err


def test_mulan_arff_features_end_to_end(shared_datasets, tmp_path):
    """A head on MULAN emotions' 72 ARFF attributes: train, evaluate, predict, no feature flag."""
    folder = shared_datasets / "mulan" / "emotions"
    train_arff, test_arff = folder / "emotions-train.arff", folder / "emotions-test.arff"
    model = tmp_path / "model"
    assert main(["train", "--train", str(train_arff), "--val", str(test_arff), "--out",
                 str(model), "--epochs", "5", "--head-lr", "0.01"]) == 0  # fmt: skip
    args = json.loads((model / "training_args.json").read_text())
    assert len(args["features"]["feature_columns"]) == 72 and args["mode"] == "embedding"
    report = tmp_path / "e.json"
    assert main(["evaluate", "--model", str(model), "--data", str(test_arff),
                 "--json", str(report)]) == 0  # fmt: skip
    result = json.loads(report.read_text())
    assert result["rows"] == 202 and result["metrics"]["n_labels_evaluated"] == 6
    assert result["metrics"]["micro_f1"] > 0.5  # a linear head on these features: ~0.6-0.7
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(model), "--data", str(test_arff),
                 "--out", str(out)]) == 0  # fmt: skip
    assert read_labels(out).to_lists() == read_labels(test_arff).to_lists()
    assert pq.read_table(out).num_rows == 202


def test_mulan_features_from_parquet_with_a_prefix(shared_datasets, tmp_path):
    """The same set as Parquet with per-feature columns: ``--feature-prefix`` resolves the
    columns once (at training); evaluate and predict find them with no flags."""
    from mlbalance.io import read_dataset, write_parquet

    folder = shared_datasets / "mulan" / "emotions"
    paths = {}
    for split in ("train", "test"):
        ds = read_dataset(folder / f"emotions-{split}.arff")
        paths[split] = tmp_path / f"{split}.parquet"
        write_parquet(ds.table, paths[split], labels=ds.labels.names, spec=ds.spec)
    model = tmp_path / "model"
    assert main(["train", "--train", str(paths["train"]), "--val", str(paths["test"]),
                 "--feature-prefix", "Mean_Acc1298_Mean", "--out", str(model),
                 "--epochs", "3"]) == 0  # fmt: skip
    columns = json.loads((model / "training_args.json").read_text())["features"]
    assert len(columns["feature_columns"]) == 16  # the 16 Mean_Acc1298_Mean_* attributes
    assert main(["evaluate", "--model", str(model), "--data", str(paths["test"])]) == 0
    assert main(["predict", "--model", str(model), "--data", str(paths["test"]),
                 "--out", str(tmp_path / "p.parquet")]) == 0  # fmt: skip


# ----------------------------------------------------------------------------- full disk
def test_resume_writes_the_model_folder_a_full_disk_refused(latin1, tmp_path, monkeypatch, capsys):
    """The model folder's write fails (ENOSPC): the message says the checkpoints are kept,
    and resuming from them writes the folder without another epoch."""
    import errno

    import safetensors.torch

    real = safetensors.torch.save_file

    def full(tensors, filename, *args, **kwargs):
        if not any(part.endswith(".ckpt") for part in Path(filename).parts):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(tensors, filename, *args, **kwargs)

    out = tmp_path / "m"
    argv = ["train", "--train", str(latin1["train"]), "--val", str(latin1["val"]),
            "--feature-columns", ",".join(FEATURES), "--label-sep", "|", "--encoding",
            "latin-1", "--out", str(out), "--epochs", "2"]  # fmt: skip
    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in err and "m.ckpt" in err and not out.exists()
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history) == 2 and (out / "head.safetensors").is_file()
    assert "resumed from" in capsys.readouterr().err
