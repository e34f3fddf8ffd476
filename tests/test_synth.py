"""The built-in synthetic long-tailed dataset."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlbalance import ParameterError
from mlbalance.io import read_dataset
from mlbalance.synth import (
    make_synthetic,
    make_synthetic_table,
    synth_label_matrix,
    target_label_counts,
    write_synthetic,
)


def test_long_tail_shape():
    y = synth_label_matrix(200_000, 500, seed=1)
    counts = y.counts()
    assert counts[0] > 0.10 * y.n_rows  # head label > 10% of rows
    assert counts.min() < 10  # rarest labels < 10 rows
    assert counts.min() >= 1  # but every label exists
    assert 2.0 < y.row_sizes().mean() < 3.5  # ~3 labels a row
    assert (y.row_sizes() == 0).any()  # rows with no label occur


def test_target_counts_reach_cardinality():
    c = target_label_counts(100_000, 500, cardinality=3.0)
    assert abs(c.sum() / 100_000 - 3.0) < 0.05
    assert np.all(np.diff(c) <= 0)


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_synthetic(a, 2000, 50, seed=3)
    write_synthetic(b, 2000, 50, seed=3)
    assert a.read_bytes() == b.read_bytes()
    c = tmp_path / "c.parquet"
    write_synthetic(c, 2000, 50, seed=4)
    assert a.read_bytes() != c.read_bytes()


def test_refuses_to_overwrite(tmp_path):
    p = tmp_path / "d.parquet"
    write_synthetic(p, 100, 10)
    with pytest.raises(ParameterError, match="exists"):
        write_synthetic(p, 100, 10)


def test_text_depends_on_labels():
    """Rows sharing a label share its signature words more than unrelated rows do."""
    df = make_synthetic(3000, 20, seed=0)
    assert set(df.columns) == {"id", "text", "labels"}
    assert 200 < df["text"].str.len().mean() < 400
    words = [set(t.split()) for t in df["text"]]
    has = np.array(["label_005" in labs for labs in df["labels"]])
    assert has.sum() > 20
    vocab = set().union(*words)
    freq_with = {w: np.mean([w in words[i] for i in np.flatnonzero(has)]) for w in vocab}
    enriched = [w for w, f in freq_with.items() if f > 0.3]
    freq_without = {w: np.mean([w in words[i] for i in np.flatnonzero(~has)]) for w in enriched}
    signature = [w for w in enriched if freq_without[w] < 0.05]
    assert signature, "label_005 rows should share signature words absent elsewhere"


def test_table_round_trips_through_io(tmp_path):
    p = tmp_path / "s.parquet"
    table = write_synthetic(p, 500, 30, seed=2)
    ds = read_dataset(p)
    assert ds.labels.names == tuple(f"label_{i:03d}" for i in range(30))
    assert ds.table.column("labels").to_pylist() == table.column("labels").to_pylist()
    assert pq.read_metadata(p).num_rows == 500


def test_no_text_option():
    t = make_synthetic_table(100, 10, text=False)
    assert t.column_names == ["id", "labels"]


def test_bad_parameters():
    with pytest.raises(ParameterError, match="rows must be"):
        synth_label_matrix(0)
    with pytest.raises(ParameterError, match="unknown synthetic-data options"):
        make_synthetic_table(10, 5, bogus=1)
