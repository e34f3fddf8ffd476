"""Readers and writers: every format and label layout round-trips; bad input gets clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbalance import InputError, ParameterError
from mlbalance.io import (
    LabelSpec,
    iter_batches,
    output_dir,
    read_dataset,
    read_labels,
    read_metadata,
    write_parquet,
)

ROWS = [["sports", "politics"], [], ["tech"], ["sports"], ["politics", "tech", "sports"]]
TEXT = ["a b", "c", "d e f", "g", "h i"]
NAMES = ("politics", "sports", "tech")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": range(5), "text": TEXT, "labels": ROWS})


def _check(y, names=NAMES, rows=ROWS):
    assert y.names == names
    assert [sorted(r) for r in y.to_lists()] == [sorted(r) for r in rows]


def test_parquet_list_column(tmp_path):
    p = tmp_path / "d.parquet"
    _frame().to_parquet(p)
    _check(read_labels(p))
    ds = read_dataset(p)
    _check(ds.labels)
    assert ds.table.column_names == ["id", "text", "labels"]
    assert ds.table.column("text").to_pylist() == TEXT


def test_parquet_folder_of_shards(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    df = _frame()
    df.iloc[:2].to_parquet(folder / "part-0.parquet")
    df.iloc[2:].to_parquet(folder / "part-1.parquet")
    (folder / "manifest.json").write_text("{}")
    _check(read_labels(folder))
    assert read_dataset(folder).table.num_rows == 5


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_delimited_string(tmp_path, fmt):
    p = tmp_path / f"d.{fmt}"
    df = _frame()
    df["labels"] = ["|".join(r) for r in ROWS]
    df.to_csv(p, index=False, sep="," if fmt == "csv" else "\t")
    _check(read_labels(p, LabelSpec(sep="|")))
    ds = read_dataset(p, LabelSpec(sep="|"))
    assert ds.table.column("text").to_pylist() == TEXT


def test_csv_json_list_cells(tmp_path):
    p = tmp_path / "d.csv"
    df = _frame()
    df["labels"] = [json.dumps(r) for r in ROWS]
    df.to_csv(p, index=False)
    _check(read_labels(p))


def test_jsonl_list_and_int_lists(tmp_path):
    p = tmp_path / "d.jsonl"
    _frame().to_json(p, orient="records", lines=True)
    _check(read_labels(p))
    q = tmp_path / "ints.jsonl"
    pd.DataFrame({"labels": [[3, 1], [], [10]]}).to_json(q, orient="records", lines=True)
    y = read_labels(q)
    assert y.names == ("1", "3", "10")


def test_label_ids_with_names_file_goemotions_style(tmp_path):
    names = tmp_path / "labels.txt"
    names.write_text("anger\njoy\nneutral\nfear\n")
    p = tmp_path / "d.tsv"
    p.write_text("I am glad\t1\tid1\nwhat\t0,3\tid2\nok\t2\tid3\n")
    spec = LabelSpec(sep=",", names_file=str(names), header_names=("text", "labels", "id"))
    ds = read_dataset(p, spec)
    assert ds.labels.names == ("anger", "joy", "neutral", "fear")  # names-file order
    assert ds.labels.to_lists() == [["joy"], ["anger", "fear"], ["neutral"]]
    assert ds.table.column("id").to_pylist() == ["id1", "id2", "id3"]


def test_indicator_columns_by_list_and_prefix(tmp_path):
    dense = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]])
    df = pd.DataFrame(dense, columns=["y_a", "y_b", "y_c"])
    df.insert(0, "text", ["x", "y", "z"])
    p = tmp_path / "d.csv"
    df.to_csv(p, index=False)
    y = read_labels(p, LabelSpec(prefix="y_"))
    assert y.names == ("a", "b", "c")
    assert (y.to_dense() == dense).all()
    y2 = read_labels(p, LabelSpec(columns=("y_c", "y_a")))
    assert y2.names == ("y_c", "y_a")
    assert y2.to_lists() == [["y_c", "y_a"], [], ["y_c"]]


def test_duplicates_and_empty_lists_counted(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"labels": [["a", "a", "b"], [], ["b"]]}).to_parquet(p)
    stats: dict[str, int] = {}
    y = read_labels(p, stats=stats)
    assert y.to_lists() == [["a", "b"], [], ["b"]]
    assert stats == {"duplicate_labels": 1, "empty_rows": 1}


def test_written_vocabulary_travels_with_the_file(tmp_path):
    """A split that lacks a label still knows it, and keeps the dataset's label order."""
    table = pa.table({"labels": [["tech"], ["tech", "sports"]]})
    p = tmp_path / "val.parquet"
    write_parquet(table, p, labels=("tech", "sports", "rare"), spec=LabelSpec())
    y = read_labels(p)
    assert y.names == ("tech", "sports", "rare")
    assert y.counts().tolist() == [2, 1, 0]
    meta = read_metadata(p)
    assert meta is not None and meta["labels"] == ["tech", "sports", "rare"]


def test_stored_spec_is_used_when_none_given(tmp_path):
    table = pa.table({"tags": ["a|b", "b"]})
    p = tmp_path / "d.parquet"
    write_parquet(table, p, labels=("a", "b"), spec=LabelSpec(column="tags", sep="|"))
    assert read_labels(p).to_lists() == [["a", "b"], ["b"]]


def test_iter_batches_shares_vocabulary(tmp_path):
    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(_frame()), p, row_group_size=2)
    batches = list(iter_batches(p, batch_rows=2))
    assert sum(b.n_rows for b in batches) == 5
    assert all(b.labels.names == NAMES for b in batches)
    assert [r for b in batches for r in b.labels.to_lists()] == [sorted(r) for r in ROWS]


# -- bad input -----------------------------------------------------------------------------------
def test_missing_file_and_column(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_labels(tmp_path / "nope.parquet")
    p = tmp_path / "d.parquet"
    _frame().to_parquet(p)
    with pytest.raises(InputError, match=r"d.parquet: no column 'tags' \(columns: id, text"):
        read_labels(p, LabelSpec(column="tags"))
    c = tmp_path / "d.csv"
    _frame().to_csv(c, index=False)
    with pytest.raises(InputError, match=r"d\.csv: no column 'tags'"):
        read_dataset(c, LabelSpec(column="tags"))


def test_null_and_malformed_cells_name_the_row(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"labels": [["a"], None, ["b"]]}).to_parquet(p)
    with pytest.raises(InputError, match=r"column 'labels', row 1: null label cell"):
        read_labels(p)
    q = tmp_path / "e.parquet"
    pd.DataFrame({"labels": [["a"], ["b", None]]}).to_parquet(q)
    with pytest.raises(InputError, match="row 1: null label inside"):
        read_labels(q)
    c = tmp_path / "d.csv"
    c.write_text('labels\n"[""a"""\n')
    with pytest.raises(InputError, match="row 0: cannot parse label list"):
        read_labels(c)


def test_wrong_shape_and_empty(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"labels": [0.5, 1.5]}).to_parquet(p)
    with pytest.raises(InputError, match="has type double; expected a list"):
        read_labels(p)
    e = tmp_path / "e.parquet"
    pd.DataFrame({"labels": pd.Series([], dtype=object)}).to_parquet(e)
    with pytest.raises(InputError, match="no rows"):
        read_labels(e)
    i = tmp_path / "i.csv"
    i.write_text("y_a,y_b\n1,0\n2,1\n")
    with pytest.raises(InputError, match=r"column 'y_a', row 1: value 2.0 is not 0/1"):
        read_labels(i, LabelSpec(prefix="y_"))


def test_label_id_out_of_range(tmp_path):
    names = tmp_path / "n.txt"
    names.write_text("a\nb\n")
    p = tmp_path / "d.jsonl"
    p.write_text('{"labels": [0, 5]}\n')
    with pytest.raises(InputError, match=r"row 0: label id 5 is outside the 2 names"):
        read_labels(p, LabelSpec(names_file=str(names)))


def test_unknown_suffix(tmp_path):
    p = tmp_path / "d.xlsx"
    p.write_text("x")
    with pytest.raises(InputError, match="use --format"):
        read_labels(p)


# -- output folders ------------------------------------------------------------------------------
def test_output_dir_is_atomic(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), output_dir(out) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no temporary left behind
    with output_dir(out) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (out / "done.txt").exists()


def test_output_dir_refuses_non_empty_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(ParameterError, match="not empty; pass overwrite=True") as err:
        with output_dir(out):
            pass
    assert err.value.params == ("overwrite",)
    with output_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]


def test_output_dir_never_overwrites_input(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    with (
        pytest.raises(ParameterError, match="would overwrite the input"),
        output_dir(src, overwrite=True, inputs=[src]),
    ):
        pass


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from mlbalance.io.writers import DIR_MODE, FILE_MODE

    p = tmp_path / "d.parquet"
    write_parquet(pa.table({"labels": [["a"]]}), p, labels=("a",), spec=LabelSpec())
    assert stat.S_IMODE(os.stat(p).st_mode) == FILE_MODE
    out = tmp_path / "out"
    with output_dir(out) as tmp:
        (tmp / "x").write_text("x")
    assert stat.S_IMODE(os.stat(out).st_mode) == DIR_MODE


def test_arff_dataset_carries_its_labels_column(shared_datasets):
    ds = read_dataset(shared_datasets / "mulan" / "emotions" / "emotions.arff")
    assert ds.spec.column == "labels"
    assert ds.table.column("labels").to_pylist()[:50] == ds.labels.to_lists()[:50]
    assert ds.table.num_rows == 593


def test_arff_given_as_train_and_test_halves(shared_datasets):
    """scene ships only as scene-train.arff + scene-test.arff: scene.arff is their union."""
    y = read_labels(shared_datasets / "mulan" / "scene" / "scene.arff")
    assert y.shape == (2407, 6)


def test_read_table_reads_every_column_without_labels(tmp_path):
    from mlbalance.io import read_table

    p = tmp_path / "d.tsv"
    p.write_text('a "quoted" text\t1,2\tid1\nplain\t\tid2\n')
    t = read_table(p, header_names=["text", "labels", "id"])
    assert t.column("text").to_pylist() == ['a "quoted" text', "plain"]
    assert t.column("id").to_pylist() == ["id1", "id2"]
    with pytest.raises(InputError, match=r"no column .body. .*name the column with text_column"):
        read_table(p, header_names=["text", "labels", "id"], columns=["body"])


# -- concurrent and interrupted runs -------------------------------------------------------------
def test_a_second_run_on_the_same_output_fails_at_once(tmp_path):
    from mlbalance.io import atomic_path

    out = tmp_path / "out"
    with output_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
        with pytest.raises(
            ParameterError, match=r"being written by another mlbalance run \(process"
        ):
            with output_dir(out, overwrite=True):
                pass
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock or temporary left
    f = tmp_path / "f.json"
    with atomic_path(f) as tmp:
        tmp.write_text("1")
        with pytest.raises(ParameterError, match="another mlbalance run"), atomic_path(f):
            pass
    assert f.read_text() == "1"


def test_leftovers_of_interrupted_runs_are_removed_with_their_size(tmp_path):
    out = tmp_path / "out"
    killed = tmp_path / ".out.mlbalance-k1ll3d_x.tmp"  # what a killed run leaves
    killed.mkdir()
    (killed / "part-00000-of-00002.parquet").write_bytes(b"x" * 2_000_000)
    older = tmp_path / ".out.ab12cd34.tmp"  # the temporary name of mlbalance 0.1
    older.mkdir()
    (older / "x").write_bytes(b"y" * 500_000)
    half_file = tmp_path / ".out.mlbalance-zz9.tmp"
    half_file.write_bytes(b"z")
    others = [tmp_path / ".out.b.mlbalance-abc.tmp", tmp_path / ".other.mlbalance-abc.tmp"]
    for p in others:
        p.mkdir()
    with pytest.warns(UserWarning, match=r"removed 3 temporary item\(s\) .* \(2\.5 MB\)"):
        with output_dir(out) as tmp:
            (tmp / "done.txt").write_text("ok")
    assert not killed.exists() and not older.exists() and not half_file.exists()
    assert all(p.exists() for p in others)  # another output's temporaries are not ours


def test_an_output_moved_aside_by_a_killed_overwrite_is_restored(tmp_path):
    out = tmp_path / "out"
    aside = tmp_path / ".out.mlbalance-q1w2e3.old"
    aside.mkdir()
    (aside / "x").mkdir()
    (aside / "x" / "old.txt").write_text("previous output")
    with pytest.warns(UserWarning, match="restored"):
        with pytest.raises(ParameterError, match="not empty"), output_dir(out):
            pass
    assert (out / "old.txt").read_text() == "previous output" and not aside.exists()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_text_in_another_encoding_reads_with_encoding(tmp_path, fmt):
    """Not UTF-8: refused with the line and byte; with encoding= it reads as text."""
    rows = [("café", "a|b"), ("naïve", "b")]
    if fmt == "jsonl":
        body = "".join(json.dumps({"text": t, "labels": lab.split("|")}) + "\n" for t, lab in rows)
        body = body.replace("\\u00e9", "é").replace("\\u00ef", "ï")
    else:
        sep = "," if fmt == "csv" else "\t"
        body = f"text{sep}labels\n" + "".join(f"{t}{sep}{lab}\n" for t, lab in rows)
    p = tmp_path / f"d.{fmt}"
    p.write_bytes(body.encode("latin-1"))
    spec = LabelSpec(sep="|" if fmt != "jsonl" else None)
    line = 1 if fmt == "jsonl" else 2  # the first data row
    with pytest.raises(InputError, match=rf"line {line} \(byte \d+, 0xe9\) is not UTF-8"):
        read_dataset(p, spec)
    ds = read_dataset(p, LabelSpec(sep=spec.sep, encoding="latin-1"))
    assert ds.table.column("text").to_pylist() == ["café", "naïve"]
    assert ds.labels.to_lists() == [["a", "b"], ["b"]]
