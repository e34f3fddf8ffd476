"""The analyse report: keys, consistency with the measures, summary text, plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from mlbalance import ParameterError
from mlbalance import measures as M
from mlbalance.analyse import analyse, format_summary, plot_report, write_per_label_csv
from mlbalance.buckets import label_buckets
from mlbalance.labels import LabelMatrix
from mlbalance.synth import synth_label_matrix

REQUIRED = (
    "rows",
    "labels",
    "cardinality",
    "density",
    "mean_ir",
    "max_ir",
    "cvir",
    "scumble",
    "scumble_cv",
    "tcs",
    "labelsets",
    "per_label",
)


@pytest.fixture(scope="module")
def y():
    return synth_label_matrix(20_000, 120, seed=1)


@pytest.fixture(scope="module")
def report(y):
    return analyse(y, folds=5, test_size=0.1, top_pairs=10)


def test_report_keys_and_json(report, y):
    for key in REQUIRED:
        assert key in report
    json.dumps(report, allow_nan=False)  # JSON-ready: no NaN / inf
    assert report["rows"] == y.n_rows and report["labels"] == y.n_labels
    assert len(report["per_label"]) == y.n_labels
    for p in report["per_label"]:
        assert {"label", "count", "irlbl", "scumble", "frequency", "bucket", "minority"} <= set(p)


def test_report_equals_measures(report, y):
    m = M.compute_measures(y)
    assert report["mean_ir"] == m.mean_ir and report["scumble"] == m.scumble
    assert report["labelsets"] == {
        "distinct": m.labelsets.distinct,
        "single": m.labelsets.single,
        "max_frequency": m.labelsets.max_frequency,
    }
    counts = np.array([p["count"] for p in report["per_label"]])
    np.testing.assert_array_equal(counts, y.counts())
    assert [p["label"] for p in report["per_label"]] == list(y.names)
    assert [p["bucket"] for p in report["per_label"]] == label_buckets(counts).tolist()
    assert [p["minority"] for p in report["per_label"]] == m.minority.tolist()
    b = report["buckets"]
    assert b["head"] + b["medium"] + b["tail"] == y.n_labels
    assert report["minority_labels"] == int(m.minority.sum())


def test_top_pairs_and_splits(report, y):
    dense = y.to_dense(np.int64)
    co = dense.T @ dense
    index = y.label_index()
    rows = [p["rows"] for p in report["top_pairs"]]
    assert rows == sorted(rows, reverse=True) and len(rows) == 10
    for p in report["top_pairs"]:
        a, b = (index[n] for n in p["labels"])
        assert co[a, b] == p["rows"]
    upper = co[np.triu_indices(y.n_labels, 1)]
    assert rows[0] == upper.max()
    counts = y.counts()
    s = report["splits"]
    assert sorted(s["rare_for_folds"]) == sorted(
        n for n, c in zip(y.names, counts, strict=True) if 0 < c < 5
    )
    assert sorted(s["rare_for_test"]) == sorted(
        n for n, c in zip(y.names, counts, strict=True) if 0 < c < 10
    )


def test_absent_label_and_custom_buckets():
    y = LabelMatrix.from_lists([["a"], ["a", "b"], ["a"]], names=["a", "b", "zz"])
    r = analyse(y, head_min=2, tail_max=1, folds=2, test_size=0.5)
    per = {p["label"]: p for p in r["per_label"]}
    assert per["zz"]["irlbl"] is None and per["zz"]["count"] == 0
    assert r["absent_labels"] == 1 and r["splits"]["absent"] == ["zz"]
    assert [per[n]["bucket"] for n in "ab"] == ["head", "medium"] and per["zz"]["bucket"] == "tail"
    assert r["splits"]["rare_for_folds"] == ["b"]
    assert r["splits"]["single_row"] == ["b"]
    json.dumps(r, allow_nan=False)
    text = format_summary(r)
    assert "no row at all: zz" in text


def test_bad_parameters():
    y = LabelMatrix.from_lists([["a"]], names=["a"])
    with pytest.raises(ParameterError):
        analyse(y, folds=1)
    with pytest.raises(ParameterError):
        analyse(y, test_size=0)
    with pytest.raises(ParameterError):
        analyse(y, head_min=5, tail_max=10)


def test_summary_reads_plainly(report):
    text = format_summary(report, source="data.parquet")
    lines = text.splitlines()
    assert lines[0] == "mlbalance analyse — data.parquet"
    assert len(lines) <= 30 and max(len(s) for s in lines) <= 130
    assert "Reading:" in text and "imbalanced" in text
    assert "`mlbalance split`" in text and "Do: " in text
    assert "too rare to split" in text
    assert report["advice"][0]["rule"] == "too-rare-to-split"


def test_balanced_dataset_reading():
    y = LabelMatrix.from_lists([["a"], ["b"]] * 50, names=["a", "b"])
    text = format_summary(analyse(y))
    assert "Balanced" in text and "resampling is not needed" in text
    assert "Every label has enough rows" in text


def _rows(*groups: tuple[list[str], int]) -> LabelMatrix:
    lists = [labels for labels, times in groups for _ in range(times)]
    names = sorted({n for labels, _ in groups for n in labels})
    return LabelMatrix.from_lists(lists, names=names)


def _advice(y: LabelMatrix) -> tuple[list[str], str]:
    """The advice rules and their text (as the summary shows it, before line wrapping)."""
    report = analyse(y)
    json.dumps(report, allow_nan=False)
    summary = " ".join(line.strip() for line in format_summary(report).splitlines())
    assert all(a["text"] in summary for a in report["advice"])
    return [a["rule"] for a in report["advice"]], summary


def test_reading_no_tail_recommends_thresholds_not_resampling():
    rules, text = _advice(_rows((["a"], 1000), (["b"], 300), (["c"], 50)))
    assert rules == ["no-tail"]
    assert "tune a threshold per label" in text and "0.198 to 0.397" in text
    assert "mlbalance resample" not in text and "--recipe long-tail" not in text


def test_reading_few_tail_labels_get_the_rare_threshold_fallback():
    heads = [([f"h{i}"], 30 + i) for i in range(60)]
    rules, text = _advice(_rows((["top"], 2000), *heads, (["t0"], 12), (["t1"], 15)))
    assert rules == ["few-tail"]
    assert "Only 2 tail label(s)" in text and "--threshold-fallback rare" in text


def test_reading_long_tail_with_low_scumble_recommends_rebalancing_rows():
    tails = [([f"r{i}"], 10 + i) for i in range(8)]
    rules, text = _advice(_rows((["a"], 1000), (["b"], 400), *tails))
    assert rules == ["long-tail"]
    assert "--recipe long-tail" in text and "--method ml-ros" in text and "remedial" not in text


def test_reading_high_scumble_recommends_remedial_or_a_sampler_not_ml_ros():
    pairs = [(["a", f"r{i}"], 10) for i in range(10)]
    rules, text = _advice(_rows((["a"], 100), (["b"], 60), *pairs))
    assert rules == ["high-scumble"]
    assert "--method remedial" in text and "repeat-factor" in text and "not ML-ROS" in text


def test_reading_names_labels_too_rare_to_split_first():
    tails = [([f"r{i}"], 10 + i) for i in range(8)]
    rules, text = _advice(_rows((["a"], 1000), (["b"], 400), *tails, (["once"], 1), (["two"], 2)))
    assert rules == ["too-rare-to-split", "long-tail"]
    first = text.index("too rare to split")
    assert first < text.index("--recipe long-tail")
    assert "1 sit on a single row" in text and "--ensure-eval-labels" in text


def test_reading_of_labels_without_rows():
    y = LabelMatrix.from_sparse(sp.csr_matrix((5, 2), dtype=np.uint8), ["a", "b"])
    rules, text = _advice(y)
    assert rules == ["empty"] and "nothing to balance" in text


def test_per_label_csv(tmp_path, report):
    import csv

    path = tmp_path / "per.csv"
    write_per_label_csv(report, path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == report["labels"]
    assert rows[0]["label"] == report["per_label"][0]["label"]
    assert int(rows[0]["count"]) == report["per_label"][0]["count"]


def test_plot_writes_png(tmp_path, report, y):
    path = tmp_path / "a.png"
    plot_report(report, y, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left over


def test_accepts_a_dataset_and_plain_lists(tmp_path):
    import pandas as pd

    from mlbalance.io import read_dataset

    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "labels": [["x"], ["x", "y"], []]}).to_parquet(path)
    r = analyse(read_dataset(path))
    assert r["rows"] == 3 and r["labels"] == 2 and r["rows_without_labels"] == 1
    assert analyse([["x"], ["x", "y"], []])["mean_ir"] == r["mean_ir"]
