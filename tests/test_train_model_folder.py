"""The model folder: it remembers how its data was read, predicts what ``predict`` predicts,
and loads into an in-memory predictor.

Data shaped like GoEmotions: a TSV without a header row, ``text<TAB>ids<TAB>id`` with label
ids that index a names file, read with ``--header-names text,labels,id --label-sep ,
--label-names labels.txt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.cli import main  # noqa: E402
from test_train import emb_config, run_train, write_embedding_splits  # noqa: E402

HEADER = "text,labels,id"
MAX_LENGTH = 16


# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_goemotions_like(folder: Path, n_rows: int = 300, n_labels: int = 6) -> dict[str, Path]:
    from mlbalance.synth import label_names, make_synthetic_table

    table = make_synthetic_table(n_rows, n_labels, 0, words_per_row=30)
    names = label_names(n_labels)
    index = {n: i for i, n in enumerate(names)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(names) + "\n")
    rows = [
        f"{text}\t{','.join(str(index[n]) for n in labels) or '0'}\tid{i}"
        for i, (text, labels) in enumerate(
            zip(table.column("text").to_pylist(), table.column("labels").to_pylist())
        )
    ]
    cut = {"train": (0, 200), "dev": (200, 250), "test": (250, n_rows)}
    paths = {"labels": folder / "labels.txt"}
    for split, (a, b) in cut.items():
        paths[split] = folder / f"{split}.tsv"
        paths[split].write_text("\n".join(rows[a:b]) + "\n")
    return paths


@pytest.fixture(scope="module")
def go(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT trained on GoEmotions-shaped TSV through the CLI."""
    from mlbalance.train.tiny import make_tiny_model

    folder = tmp_path_factory.mktemp("go")
    paths = _write_goemotions_like(folder / "data")
    corpus = [line.split("\t")[0] for line in paths["train"].read_text().splitlines()]
    tiny = make_tiny_model(folder / "tiny", corpus, vocab_size=400, hidden_size=16)
    paths["model"] = folder / "model"
    argv = ["train", "--train", str(paths["train"]), "--val", str(paths["dev"]),
            "--header-names", HEADER, "--label-sep", ",", "--label-names", str(paths["labels"]),
            "--model", str(tiny), "--out", str(paths["model"]), "--epochs", "2",
            "--max-length", str(MAX_LENGTH), "--batch-size", "32", "--lr", "1e-3",
            "--head-lr", "1e-2", "--no-prior-bias"]  # fmt: skip
    assert main(argv) == 0
    return paths


def _evaluate(argv: list[str], out: Path) -> dict:
    assert main(["evaluate", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_the_folder_records_the_layout_without_paths(go):
    args = json.loads((go["model"] / "training_args.json").read_text())
    layout = args["label_layout"]
    assert layout["sep"] == "," and layout["header_names"] == HEADER.split(",")
    assert layout["id_names"] == args["labels"] and "names_file" not in layout
    assert args["label_names"] == "labels.txt" and args["train"] == "train.tsv"
    assert str(go["labels"].parent) not in (go["model"] / "training_args.json").read_text()


def test_evaluate_reuses_the_models_label_layout(go, tmp_path, capsys):
    data = ["--model", str(go["model"]), "--data", str(go["test"])]
    explicit = _evaluate([*data, "--header-names", HEADER, "--label-sep", ",",
                          "--label-names", str(go["labels"])], tmp_path / "a.json")  # fmt: skip
    reused = _evaluate([*data, "--header-names", HEADER], tmp_path / "b.json")
    recorded = _evaluate(data, tmp_path / "c.json")  # header names from the model too
    assert explicit["metrics"]["n_labels_evaluated"] > 0
    assert explicit["metrics"]["micro_recall"] > 0
    for other in (reused, recorded):
        assert other["rows"] == explicit["rows"] == 50
        assert other["metrics"] == explicit["metrics"]


def test_evaluate_refuses_data_without_a_model_label(go, capsys):
    data = ["--model", str(go["model"]), "--data", str(go["test"]), "--header-names", HEADER]
    assert main(["evaluate", *data, "--label-sep", ";"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlbalance: error: ") and "\n" not in err
    assert "none of the model's 6 labels occurs in the data" in err and "split on ';'" in err


def test_predict_reuses_the_recorded_header_names(go, tmp_path):
    from mlbalance.errors import ParameterError
    from mlbalance.train.model_folder import load_predictor

    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(go["model"]), "--data", str(go["test"]),
                 "--out", str(out)]) == 0  # fmt: skip
    table = pq.read_table(out)
    assert table.num_rows == 50 and table.column_names[:3] == HEADER.split(",")
    # the in-memory predictor gives what predict wrote
    predictor = load_predictor(go["model"])
    texts = table.column("text").to_pylist()
    proba = predictor.predict_proba(texts)
    np.testing.assert_allclose(proba, np.stack(table.column("scores").to_numpy(False)), atol=1e-6)
    assert predictor.predict(texts) == table.column("predicted_labels").to_pylist()
    assert predictor.predict(texts[:3], threshold=0.99999) == [[], [], []]
    with pytest.raises(ParameterError, match="give a list of texts, got str"):
        predictor.predict("one text")


def test_pipeline_cuts_long_texts_where_training_did(go):
    from transformers import AutoTokenizer, pipeline

    assert AutoTokenizer.from_pretrained(go["model"]).model_max_length == MAX_LENGTH
    from mlbalance.train.model_folder import load_predictor

    words = go["train"].read_text().split()
    long_text = " ".join(words[:200])  # far more than MAX_LENGTH tokens, fewer than 512
    clf = pipeline("text-classification", model=str(go["model"]), top_k=None, truncation=True)
    by_label = {s["label"]: s["score"] for s in clf([long_text])[0]}
    predictor = load_predictor(go["model"])
    ours = predictor.predict_proba([long_text])[0]
    np.testing.assert_allclose([by_label[n] for n in predictor.names], ours, atol=1e-5)


def test_in_memory_predictor_of_an_embedding_head(tmp_path):
    from mlbalance.errors import ParameterError
    from mlbalance.train.model_folder import load_predictor

    data = write_embedding_splits(tmp_path / "d")
    run_train(emb_config(data, tmp_path / "m", epochs=2))
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(tmp_path / "m"), "--data", str(data["test"]),
                 "--out", str(out)]) == 0  # fmt: skip
    table = pq.read_table(out)
    x = np.stack(table.column("embedding").to_numpy(False))
    predictor = load_predictor(tmp_path / "m")
    assert predictor.predict(x) == table.column("predicted_labels").to_pylist()
    np.testing.assert_allclose(
        predictor.predict_proba(x), np.stack(table.column("scores").to_numpy(False)), atol=1e-6
    )
    for bad in (x[:, :3], ["some text"]):
        with pytest.raises(ParameterError, match=r"give an array of shape \(n, 16\)"):
            predictor.predict(bad)


def test_predict_writes_the_inputs_label_ids_as_names(go, tmp_path):
    """GoEmotions' ``3,27`` ids, read with the model's recorded layout (separator and id ->
    name list): the output holds names and the vocabulary, no ids and no path."""
    from mlbalance.io import LabelSpec, read_labels

    out = tmp_path / "p.parquet"
    assert main(["predict", "--model", str(go["model"]), "--data", str(go["test"]),
                 "--out", str(out)]) == 0  # fmt: skip
    table = pq.read_table(out)
    names = (go["labels"]).read_text().split()
    assert table.schema.field("labels").type == table.schema.field("predicted_labels").type
    assert all(label in names for row in table.column("labels").to_pylist() for label in row)
    spec = LabelSpec(sep=",", names_file=str(go["labels"]), header_names=tuple(HEADER.split(",")))
    assert read_labels(out).to_lists() == read_labels(go["test"], spec).to_lists()
    meta = pq.read_schema(out).metadata
    assert list(meta) == [b"mlbalance"] and str(tmp_path.parent) not in meta[b"mlbalance"].decode()
