"""``mlbalance analyse``: summary, JSON, per-label CSV, plot, ARFF input, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mlbalance.cli import main

ROWS = [
    ["sports", "politics"],
    [],
    ["tech"],
    ["sports"],
    ["politics", "tech", "sports"],
    ["sports"],
    ["tech"],
    ["rare"],
]


@pytest.fixture()
def parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"id": range(len(ROWS)), "text": ["t"] * len(ROWS), "labels": ROWS}).to_parquet(
        path
    )
    return path


def test_summary_json_csv_plot(tmp_path, parquet, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = main(
        [
            "analyse",
            str(parquet),
            "--json",
            str(out / "r.json"),
            "--per-label",
            str(out / "p.csv"),
            "--plot",
            str(out / "p.png"),
            "--folds",
            "3",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "rows          8" in text and "Reading:" in text
    assert "wrote per-label table" in text
    r = json.loads((out / "r.json").read_text())
    assert r["rows"] == 8 and r["labels"] == 4 and r["rows_without_labels"] == 1
    assert r["source"] == str(parquet)
    assert {p["label"]: p["count"] for p in r["per_label"]} == {
        "politics": 2,
        "rare": 1,
        "sports": 4,
        "tech": 3,
    }
    assert r["splits"]["folds"] == 3 and r["splits"]["rare_for_folds"] == ["rare", "politics"]
    assert (out / "p.csv").read_text().startswith("label,count,frequency,irlbl")
    assert (out / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_json_to_stdout_keeps_stdout_pure(parquet, capsys):
    assert main(["analyse", str(parquet), "--json", "-"]) == 0
    captured = capsys.readouterr()
    r = json.loads(captured.out)
    assert r["labels"] == 4
    assert "Reading:" in captured.err


def test_duplicate_labels_in_a_row_are_counted_once(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text('{"labels": ["a", "a", "b"]}\n{"labels": []}\n{"labels": ["b"]}\n')
    assert main(["analyse", str(path), "--json", "-"]) == 0
    captured = capsys.readouterr()
    r = json.loads(captured.out)
    assert r["duplicate_labels"] == 1 and r["rows_without_labels"] == 1
    assert {p["label"]: p["count"] for p in r["per_label"]} == {"a": 1, "b": 2}
    assert "1 label(s) repeated within a row were counted once" in captured.err


def test_label_options_csv(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("text,tags\na,x|y\nb,y\nc,\n")
    assert (
        main(["analyse", str(path), "--label-column", "tags", "--label-sep", "|", "--json", "-"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["rows"] == 3 and r["labels"] == 2 and r["rows_without_labels"] == 1


@pytest.mark.mulan
def test_arff_finds_xml_beside_it(shared_datasets, capsys):
    path = shared_datasets / "mulan" / "yeast" / "yeast.arff"
    assert main(["analyse", str(path), "--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["rows"] == 2417 and r["labels"] == 14 and r["n_features"] == 103
    assert r["tcs"] == pytest.approx(12.5620533485394, rel=1e-13)


def test_arff_with_xml_option(tmp_path, capsys):
    arff = tmp_path / "a.arff"
    arff.write_text("@relation r\n@attribute x numeric\n@attribute l {0,1}\n@data\n1,1\n2,0\n")
    xml = tmp_path / "names.xml"
    xml.write_text('<labels><label name="l"/></labels>')
    assert main(["analyse", str(arff), "--xml", str(xml), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 1
    assert main(["analyse", str(arff)]) == 2  # no XML beside it
    assert "a.arff: no label attributes" in capsys.readouterr().err
    assert main(["analyse", str(arff), "--xml", str(xml), "--label-column", "l"]) == 2
    assert "do not apply to ARFF" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.parquet"], "missing.parquet"),
        (["{parquet}", "--tail-max", "200"], "--tail-max (200) must not exceed --head-min"),
        (["{parquet}", "--folds", "1"], "--folds must be at least 2"),
        (["{parquet}", "--label-column", "nope"], "nope"),
        (["{parquet}", "--xml", "x.xml"], "--xml applies to ARFF input only"),
        (["{parquet}", "--json", "{parquet}"], "would overwrite the input"),
        (["{csv}"], "labels"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, parquet, capsys, args, message):
    csv = tmp_path / "bad.csv"
    csv.write_text("text,other\na,b\n")
    argv = ["analyse"] + [a.format(parquet=parquet, csv=csv) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlbalance: error: ") and "\n" not in err
    assert message in err


@pytest.mark.parametrize("value", ["0", "1.5", "x"])
def test_bad_test_size_is_a_usage_error(parquet, value):
    with pytest.raises(SystemExit) as info:
        main(["analyse", str(parquet), "--test-size", value])
    assert info.value.code == 2


def test_subprocess_no_traceback(tmp_path):
    env = {**os.environ, "MLBALANCE_NO_PROGRESS": "1"}
    env.pop("MLBALANCE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mlbalance", "analyse", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    help_ = subprocess.run(
        [sys.executable, "-m", "mlbalance", "analyse", "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert help_.returncode == 0 and "--per-label" in help_.stdout and "--test-size" in help_.stdout
