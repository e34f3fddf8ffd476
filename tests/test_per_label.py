"""Per-label results of train / evaluate: --per-label, --plot, --head-min / --tail-max."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mlbalance.errors import ParameterError  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    from test_train import write_embedding_splits

    return write_embedding_splits(tmp_path_factory.mktemp("emb"), n_rows=600)


def _flags(data: dict[str, Path], out: Path) -> list[str]:
    return [
        "train", "--train", str(data["train"]), "--val", str(data["val"]), "--test",
        str(data["test"]), "--out", str(out), "--epochs", "2", "--head-lr", "0.05",
        "--threshold-cv", "2",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def model(data, tmp_path_factory) -> tuple[Path, dict, str, Path]:
    """A model trained through the CLI with --per-label --plot --json (bounds 50 / 20)."""
    from mlbalance.cli import main

    root = tmp_path_factory.mktemp("model")
    out = root / "model"
    argv = [*_flags(data, out), "--per-label", "--plot", str(root / "train.png")]
    argv += ["--head-min", "50", "--tail-max", "20", "--json", str(root / "t.json")]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return out, json.loads((root / "t.json").read_text()), buf.getvalue(), root


def _table_rows(text: str, names: list[str]) -> list[str]:
    return [line for line in text.splitlines() if line.split()[:1] and line.split()[0] in names]


def test_train_per_label_table_json_and_plot(model):
    out, report, text, root = model
    rows = report["metrics"]["test"]["per_label"]
    names = [r["label"] for r in rows]
    assert len(names) == 8
    assert "test, tuned thresholds, per label: 8 labels" in text
    assert "head > 50 train rows, tail < 20" in text
    printed = _table_rows(text.split("per label:")[1], names)
    assert [line.split()[0] for line in printed] == sorted(
        names, key=lambda n: -next(r["train_count"] for r in rows if r["label"] == n)
    )
    for r in rows:
        assert {"label", "train_count", "bucket", "support", "precision", "recall", "f1"} <= set(r)
        assert r["threshold"] > 0
        want = "head" if r["train_count"] > 50 else "tail" if r["train_count"] < 20 else "medium"
        assert r["bucket"] == want
    conv = report["metrics"]["test"]["conventions"]
    assert (conv["head_min"], conv["tail_max"]) == (50, 20)
    args = json.loads((out / "training_args.json").read_text())
    assert (args["head_min"], args["tail_max"]) == (50, 20)
    png = (root / "train.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert "wrote the per-label F1 plot" in text


def test_evaluate_per_label_bounds_change_buckets(model, data, tmp_path, monkeypatch, capsys):
    from mlbalance.cli import main

    out = model[0]
    monkeypatch.chdir(tmp_path)  # relative paths from another working directory
    reports = {}
    for head_min, tail_max in ((100, 20), (40, 30)):
        name = f"e{head_min}.json"
        argv = ["evaluate", "--model", str(out), "--data", str(data["test"]), "--per-label"]
        argv += ["--head-min", str(head_min), "--tail-max", str(tail_max), "--json", name]
        argv += ["--plot", f"p{head_min}.png"]
        assert main(argv) == 0
        text = capsys.readouterr().out
        reports[head_min] = json.loads((tmp_path / name).read_text())
        rows = reports[head_min]["metrics"]["per_label"]
        assert len(_table_rows(text.split("per label")[1], [r["label"] for r in rows])) == 8
        assert (tmp_path / f"p{head_min}.png").read_bytes().startswith(PNG_MAGIC)
        assert reports[head_min]["train_counts_from"] == "model"
    a = [r["bucket"] for r in reports[100]["metrics"]["per_label"]]
    b = [r["bucket"] for r in reports[40]["metrics"]["per_label"]]
    assert a.count("head") < b.count("head")
    counts = [r["train_count"] for r in reports[40]["metrics"]["per_label"]]
    assert b == ["head" if c > 40 else "tail" if c < 30 else "medium" for c in counts]


def test_json_stdout_stays_json(model, data, capsys):
    from mlbalance.cli import main

    argv = ["evaluate", "--model", str(model[0]), "--data", str(data["test"]), "--per-label"]
    assert main([*argv, "--json", "-"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert len(report["metrics"]["per_label"]) == 8
    assert "per label" in captured.err and "precision" in captured.err


def test_evaluate_without_label_counts_uses_the_data(model, data, tmp_path):
    import shutil
    import warnings

    from mlbalance.train.predict import evaluate_file

    copy = tmp_path / "m"
    shutil.copytree(model[0], copy)
    (copy / "label_counts.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = evaluate_file(copy, str(data["test"]))
    assert report["train_counts_from"] == "data"
    assert any("label_counts.json" in str(w.message) for w in caught)
    supports = [r["support"] for r in report["metrics"]["per_label"]]
    assert [r["train_count"] for r in report["metrics"]["per_label"]] == [
        max(s, 1) for s in supports
    ]


def test_bad_bounds_are_one_line(model, data, capsys):
    from mlbalance.cli import main
    from mlbalance.train.config import TrainConfig

    argv = ["evaluate", "--model", str(model[0]), "--data", str(data["test"])]
    assert main([*argv, "--head-min", "5", "--tail-max", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--tail-max (9) must not exceed --head-min (5)" in err
    with pytest.raises(ParameterError, match="tail_max"):
        TrainConfig(train="a", val="b", out="c", head_min=5, tail_max=9)


def test_format_per_label_sorts_by_train_count():
    import numpy as np

    from mlbalance.metrics import evaluate_scores
    from mlbalance.per_label import format_per_label

    y = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.7, 0.3, 0.2]])
    m = evaluate_scores(y, scores, 0.5, names=["a", "b", "c"], train_counts=np.array([5, 50, 500]))
    lines = format_per_label(m).splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["c", "b", "a"]
    assert [line.split()[2] for line in lines[2:]] == ["head", "medium", "tail"]
