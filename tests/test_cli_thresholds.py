"""``mlbalance thresholds tune|apply``: files in, thresholds.json and predictions out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbalance.cli import main
from mlbalance.errors import InputError
from mlbalance.io import read_metadata
from mlbalance.thresholds import ThresholdTuner
from mlbalance.thresholds.files import labels_for_scores, read_scores

NAMES = ["anger", "joy", "fear", "awe"]


def make_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 4)) < [0.3, 0.2, 0.05, 0.02]).astype(np.uint8)
    s = 1 / (1 + np.exp(-(2.5 * y - 2 + rng.normal(0, 1, y.shape))))
    return y, s.astype(np.float32)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    y, s = make_data()
    (tmp_path / "labels.txt").write_text("\n".join(NAMES) + "\n")
    ids = [",".join(str(j) for j in np.flatnonzero(row)) for row in y]
    (tmp_path / "dev.tsv").write_text("".join(f"text {i}\t{v}\t{i}\n" for i, v in enumerate(ids)))
    np.save(tmp_path / "dev.npy", s)
    return {"dir": tmp_path, "labels": tmp_path / "dev.tsv", "names": tmp_path / "labels.txt",
            "scores": tmp_path / "dev.npy", "y": y, "s": s}  # fmt: skip


def label_flags(f: dict) -> list[str]:
    return ["--labels", str(f["labels"]), "--header-names", "text,labels,id", "--label-sep", ",",
            "--label-names", str(f["names"])]  # fmt: skip


def test_tune_then_apply_npy(files: dict, capsys: pytest.CaptureFixture) -> None:
    out = files["dir"] / "thresholds.json"
    code = main(["thresholds", "tune", "--scores", str(files["scores"]), *label_flags(files),
                 "--out", str(out), "--cv", "3", "--guard", "label", "--json", "-"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout holds only JSON
    assert "in-sample" in captured.err and "out of fold" in captured.err
    doc = json.loads(out.read_text())
    assert doc["labels"] == NAMES and report["thresholds"]["labels"] == NAMES
    want = ThresholdTuner(cv=3, guard="label").fit(files["s"], files["y"])
    np.testing.assert_array_equal(doc["thresholds"], want.thresholds_)
    assert report["crossfit"]["out_of_fold"].keys() >= {"at_0.5", "global", "per_label", "chosen"}
    pred = files["dir"] / "pred.parquet"
    assert main(["thresholds", "apply", "--scores", str(files["scores"]), "--thresholds",
                 str(out), "--out", str(pred)]) == 0  # fmt: skip
    table = pq.read_table(pred)
    names = np.array(NAMES, dtype=object)
    hits = want.predict(files["s"]).astype(bool)
    assert table.column("predicted_labels").to_pylist() == [names[r].tolist() for r in hits]
    assert table.column("row").to_pylist() == list(range(len(hits)))
    meta = read_metadata(pred)
    assert meta["labels"] == NAMES and meta["predictions"]["scores"] == "dev.npy"
    assert str(files["dir"]) not in json.dumps(meta)  # no machine-local path


def test_parquet_scores_in_another_label_order(files: dict, tmp_path: Path) -> None:
    # a `mlbalance predict`-like file: a fixed-size list column, its label order in metadata
    order = [2, 0, 3, 1]
    s = files["s"][:, order]
    flat = pa.array(s.reshape(-1))
    table = pa.table({"id": pa.array(np.arange(len(s))),
                      "scores": pa.FixedSizeListArray.from_arrays(flat, 4)})  # fmt: skip
    scores = tmp_path / "scores.parquet"
    meta = {"predictions": {"labels": [NAMES[j] for j in order]}}  # as predict writes it
    pq.write_table(table.replace_schema_metadata({b"mlbalance": json.dumps(meta)}), scores)
    out = tmp_path / "t.json"
    assert main(["thresholds", "tune", "--scores", str(scores), *label_flags(files),
                 "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["labels"] == [NAMES[j] for j in order]
    want = ThresholdTuner().fit(files["s"], files["y"]).thresholds_[order]
    np.testing.assert_array_equal(doc["thresholds"], want)
    pred = tmp_path / "p.parquet"
    assert main(["thresholds", "apply", "--scores", str(scores), "--thresholds", str(out),
                 "--out", str(pred)]) == 0  # fmt: skip
    got = pq.read_table(pred)
    assert got.column_names == ["id", "scores", "predicted_labels"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan", "dev.npy: scores row 5, label column 1 is nan"),
        ("rows", "dev.npy has 399 rows but"),
        ("range", "outside [0, 1]; if they are logits, pass --logits"),
        ("columns", "dev.npy has 3 score columns for 4 label names"),
    ],
)
def test_bad_scores_one_line(files: dict, change: str, message: str, capsys) -> None:
    s = files["s"].copy()
    if change == "nan":
        s[5, 1] = np.nan
    elif change == "rows":
        s = s[:-1]
    elif change == "range":
        s = s * 4 - 2
    else:
        s = s[:, :3]
    np.save(files["scores"], s)
    out = files["dir"] / "t.json"
    code = main(["thresholds", "tune", "--scores", str(files["scores"]), *label_flags(files),
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # nothing half-written


def test_flags_in_messages_and_refusals(files: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.json"
    base = ["thresholds", "tune", "--scores", str(files["scores"]), *label_flags(files)]
    assert main([*base, "--out", str(out), "--guard", "label"]) == 2
    err = capsys.readouterr().err
    assert "--guard=" in err and "needs --cv folds" in err
    out.write_text("{}")
    assert main([*base, "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*base, "--out", str(files["scores"]), "--overwrite"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err


def test_npy_with_labels_of_no_fixed_order_needs_score_names(tmp_path: Path, capsys) -> None:
    y, s = make_data(100)
    rows = [{"labels": [NAMES[j] for j in np.flatnonzero(r)]} for r in y]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    np.save(tmp_path / "dev.npy", s)
    base = ["thresholds", "tune", "--scores", str(tmp_path / "dev.npy"), "--labels",
            str(tmp_path / "dev.jsonl"), "--out", str(tmp_path / "t.json")]  # fmt: skip
    assert main(base) == 2
    assert "give --score-names (a file" in capsys.readouterr().err
    with pytest.raises(InputError, match="give score_names") as caught:
        labels_for_scores(
            read_scores(tmp_path / "dev.npy"), str(tmp_path / "dev.jsonl"), None, None
        )
    assert caught.value.params == ("score_names", "label_names")  # the CLI shows them as flags
    assert main([*base, "--score-names", ",".join(NAMES)]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    np.testing.assert_array_equal(doc["thresholds"], ThresholdTuner().fit(s, y).thresholds_)


def test_logits_round_trip(files: dict, tmp_path: Path) -> None:
    s = np.clip(files["s"].astype(np.float64), 1e-6, 1 - 1e-6)
    np.save(files["scores"], np.log(s) - np.log1p(-s))
    out, pred = tmp_path / "t.json", tmp_path / "p.parquet"
    assert main(["thresholds", "tune", "--scores", str(files["scores"]), *label_flags(files),
                 "--out", str(out), "--logits"]) == 0  # fmt: skip
    assert json.loads(out.read_text())["tuner"]["scale"] == "logit"
    assert main(["thresholds", "apply", "--scores", str(files["scores"]), "--thresholds",
                 str(out), "--out", str(pred)]) == 0  # fmt: skip
    got = pq.read_table(pred).column("predicted_labels").to_pylist()
    hits = ThresholdTuner().fit(s, files["y"]).predict(s).astype(bool)
    assert got == [np.array(NAMES, dtype=object)[r].tolist() for r in hits]


@pytest.mark.parametrize("action", ["tune", "apply"])
def test_help(action: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["thresholds", action, "--help"])
    assert info.value.code == 0
    assert "--scores" in capsys.readouterr().out


def test_tune_defaults_are_the_tuners_own():
    """`thresholds tune` without options is ThresholdTuner() (a drifted default once made the
    CLI keep a label's own cut that the trainer's tuner gave back to the global cut)."""
    from mlbalance.cli import build_parser
    from mlbalance.thresholds import ThresholdTuner

    args = build_parser().parse_args(
        ["thresholds", "tune", "--scores", "s.npy", "--labels", "y.parquet", "--out", "t.json"]
    )
    defaults = ThresholdTuner().get_params()
    assert {k: getattr(args, k) for k in defaults} == defaults


def test_missing_scores_column_is_named_as_the_flag(files: dict, tmp_path: Path, capsys) -> None:
    """The library names the parameter; the CLI's one line names the flag the user types."""
    scores = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"probs": [[0.1, 0.2]]}), scores)
    with pytest.raises(InputError, match="name the column with scores_column"):
        read_scores(scores)
    argv = ["thresholds", "tune", "--scores", str(scores), *label_flags(files),
            "--out", str(tmp_path / "t.json")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no column 'scores' (columns: probs); name the column with --scores-column" in err
