"""Tests of the streaming RepeatFactorIterableDataset over Parquet shards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbalance.errors import InputError, ParameterError
from mlbalance.io import LabelSpec
from mlbalance.labels import LabelMatrix
from mlbalance.samplers import repeat_factors

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from mlbalance.samplers import RepeatFactorIterableDataset  # noqa: E402
from mlbalance.samplers.streaming import collate_rows  # noqa: E402

N_ROWS = 1200


def _labels(n: int, seed: int = 0) -> list[list[str]]:
    """Long-tailed label lists: label j on a row with probability ~ 0.4 / (j + 1)."""
    rng = np.random.default_rng(seed)
    p = 0.4 / np.arange(1, 16)
    dense = rng.random((n, 15)) < p
    return [[f"L{j}" for j in np.flatnonzero(row)] for row in dense]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[str]]]:
    """Three Parquet files of 400 rows, row groups of 100 (12 units), plus a manifest."""
    folder = tmp_path_factory.mktemp("shards")
    labels = _labels(N_ROWS)
    table = pa.table(
        {
            "id": pa.array(np.arange(N_ROWS)),
            "text": pa.array([f"row {i}" for i in range(N_ROWS)]),
            "labels": pa.array(labels, type=pa.list_(pa.string())),
        }
    )
    for k in range(3):
        pq.write_table(
            table.slice(k * 400, 400), folder / f"part-{k:05d}.parquet", row_group_size=100
        )
    (folder / "__mlbalance__").mkdir()
    (folder / "__mlbalance__" / "manifest.json").write_text("{}")
    (folder / "manifest.json").write_text("{}")  # the side file of mlbalance 0.1
    return folder, labels


def _counts_of(ids: list[int]) -> np.ndarray:
    out = np.zeros(N_ROWS, dtype=np.int64)
    for k, v in Counter(ids).items():
        out[k] += v
    return out


def test_factors_from_first_pass_match_repeat_factors(shards) -> None:
    folder, labels = shards
    ds = RepeatFactorIterableDataset(folder, threshold=0.2, num_replicas=1, rank=0)
    assert ds.n_rows == N_ROWS and len(ds.units) == 12
    want = repeat_factors(LabelMatrix.from_lists(labels), 0.2)
    np.testing.assert_allclose(ds.row_factors(), want)
    assert ds.expected_length == pytest.approx(want.sum())


def test_ranks_and_workers_emit_exactly_the_epoch(shards) -> None:
    folder, _ = shards
    expected = None
    ids: list[int] = []
    for rank in range(2):
        ds = RepeatFactorIterableDataset(
            folder,
            threshold=0.2,
            seed=7,
            num_replicas=2,
            rank=rank,
            index_key="_row",
            shuffle_buffer=50,
        )
        ds.set_epoch(3)
        if expected is None:
            expected = ds.epoch_counts()
        loader = DataLoader(ds, batch_size=None, num_workers=2)
        rows = list(loader)
        assert rows, "every rank gets rows"
        assert all(r["id"] == r["_row"] for r in rows)
        ids.extend(r["_row"] for r in rows)
    assert expected is not None
    got = _counts_of(ids)
    np.testing.assert_array_equal(got, expected)  # no row duplicated or lost
    # the same multiset in a single process without workers
    single = RepeatFactorIterableDataset(folder, threshold=0.2, seed=7, index_key="_row")
    single.set_epoch(3)
    np.testing.assert_array_equal(_counts_of([r["_row"] for r in single]), expected)
    # and every count is floor or ceil of the row's factor
    f = single.row_factors()
    assert ((expected == np.floor(f)) | (expected == np.ceil(f))).all()
    assert (f > 1).any() and expected.sum() > N_ROWS


def test_epochs_redraw_and_converge(shards) -> None:
    folder, _ = shards
    ds = RepeatFactorIterableDataset(folder, threshold=0.2, seed=1)
    f = ds.row_factors()
    total = np.zeros(N_ROWS)
    for e in range(800):
        total += ds.epoch_counts(e)
    np.testing.assert_allclose(total / 800, f, atol=0.08)
    assert not np.array_equal(ds.epoch_counts(0), ds.epoch_counts(1))


def test_order_is_deterministic_and_shuffled(shards) -> None:
    folder, _ = shards

    def order(seed: int, epoch: int, buffer: int = 200) -> list[int]:
        ds = RepeatFactorIterableDataset(
            folder, threshold=0.2, seed=seed, index_key="_row", shuffle_buffer=buffer
        )
        ds.set_epoch(epoch)
        return [r["_row"] for r in ds]

    a = order(0, 0)
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 - global seeding must not matter
    assert a == order(0, 0)
    assert a != order(0, 1) and a != order(1, 0)
    # the buffer mixes rows across row groups; no buffer keeps each row group's order
    assert a != sorted(a)
    plain = order(0, 0, buffer=0)
    assert sorted(plain) == sorted(a)
    runs = [plain[i : i + 10] for i in range(0, 100, 10)]
    assert any(r == sorted(r) for r in runs)


def test_delimited_labels(tmp_path: Path) -> None:
    from mlbalance.io import write_parquet

    lists = _labels(300, seed=4)
    table = pa.table({"id": np.arange(300), "tags": ["|".join(r) for r in lists]})
    pq.write_table(table, tmp_path / "raw.parquet")
    ds = RepeatFactorIterableDataset(
        tmp_path / "raw.parquet", threshold=0.3, sep="|", label_column="tags"
    )
    assert ds.label_column == "tags" and ds.sep == "|"
    np.testing.assert_allclose(ds.row_factors(), repeat_factors(lists, 0.3))
    assert sum(1 for _ in ds) == ds.epoch_counts().sum()
    # written by mlbalance, the same labels are a list of names: no flags needed
    names = sorted({x for r in lists for x in r})
    out = tmp_path / "d.parquet"
    write_parquet(table, out, labels=names, spec=LabelSpec(column="tags", sep="|"))
    ds2 = RepeatFactorIterableDataset(out, threshold=0.3)
    assert ds2.label_column == "tags" and ds2.sep is None and ds2.label_names == tuple(names)
    np.testing.assert_allclose(ds2.row_factors(), ds.row_factors())


def test_given_factors_and_columns(shards) -> None:
    folder, _ = shards
    f = np.full(N_ROWS, 2.0)
    ds = RepeatFactorIterableDataset(
        folder, factors=f, columns=["text"], shuffle_buffer=0, label_key=None
    )
    rows = list(ds)
    assert len(rows) == 2 * N_ROWS and set(rows[0]) == {"text"}
    assert rows[0] == rows[1] and rows[0] is not rows[1]
    with_labels = RepeatFactorIterableDataset(folder, factors=f, columns=["text"])
    first = next(iter(with_labels))
    assert set(first) == {"text", "labels"} and first["labels"].shape == (15,)


def test_rows_carry_multi_hot_labels_and_collate(shards) -> None:
    folder, labels = shards
    ds = RepeatFactorIterableDataset(folder, threshold=0.2, index_key="_row", seed=3)
    assert ds.label_names == tuple(sorted({x for r in labels for x in r}))
    rows = list(ds)
    for r in rows[:200]:
        got = {ds.label_names[j] for j in np.flatnonzero(r["labels"].numpy())}
        assert got == set(labels[r["_row"]]) and r["labels"].dtype == torch.float32
    assert set(rows[0]) == {"id", "text", "labels", "_row"}
    batch = next(iter(DataLoader(ds, batch_size=16, collate_fn=collate_rows)))
    assert batch["labels"].shape == (16, 15) and batch["labels"].dtype == torch.float32
    assert batch["id"].dtype == torch.int64 and batch["_row"].tolist() == batch["id"].tolist()
    assert isinstance(batch["text"], list) and len(batch["text"]) == 16


@pytest.mark.parametrize("layout", ["ids+names", "indicator", "ints"])
def test_every_layout_mlbalance_reads(tmp_path: Path, layout: str) -> None:
    """Label ids with the names file of mlbalance 0.1, 0/1 columns, integer lists: the same
    factors and multi-hot labels as a list of names."""
    import json

    lists = _labels(400, seed=6)
    names = [f"L{j}" for j in range(15)]
    if layout == "ids+names":  # what mlbalance 0.1 wrote for GoEmotions: ids, a names *path*
        cells = [",".join(str(names.index(x)) for x in r) for r in lists]
        meta = {
            "labels": names,
            "label_spec": {"column": "labels", "sep": ",", "names_file": "/etc/passwd"},
        }
        table = pa.table({"labels": cells}).replace_schema_metadata(
            {b"mlbalance": json.dumps(meta).encode()}
        )
        kwargs: dict[str, object] = {}
    elif layout == "indicator":
        dense = np.array([[x in r for x in names] for r in lists], dtype=np.int8)
        table = pa.table({f"y_{n}": dense[:, j] for j, n in enumerate(names)})
        kwargs = {"spec": LabelSpec(prefix="y_")}
    else:
        table = pa.table({"labels": [[int(x[1:]) for x in r] for r in lists]})
        lists = [[x[1:] for x in r] for r in lists]
        names = [str(j) for j in range(15)]
        kwargs = {}
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=100)
    ds = RepeatFactorIterableDataset(
        tmp_path / "d.parquet", threshold=0.3, index_key="_row", **kwargs
    )
    assert ds.label_names == tuple(names)
    np.testing.assert_allclose(ds.row_factors(), repeat_factors(lists, 0.3))
    for r in list(ds)[:100]:
        assert {names[j] for j in np.flatnonzero(r["labels"].numpy())} == set(lists[r["_row"]])


def test_bad_input(shards, tmp_path: Path) -> None:
    folder, _ = shards
    with pytest.raises(InputError, match="no such file"):
        RepeatFactorIterableDataset(tmp_path / "missing", threshold=0.1)
    with pytest.raises(ParameterError, match="has 3 entries but the Parquet files have 1200"):
        RepeatFactorIterableDataset(folder, factors=[1.0, 1.0, 1.0])
    with pytest.raises(ParameterError, match="threshold"):
        RepeatFactorIterableDataset(folder)
    with pytest.raises(ParameterError, match=r"threshold must be a number in \(0, 1\]"):
        RepeatFactorIterableDataset(folder, threshold=2.0)
    with pytest.raises(InputError, match="no column 'tags'"):
        RepeatFactorIterableDataset(folder, threshold=0.1, label_column="tags")
    with pytest.raises(ParameterError, match="label_key"):
        next(iter(RepeatFactorIterableDataset(folder, threshold=0.1, label_key="text")))
    with pytest.raises(
        ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"
    ):
        RepeatFactorIterableDataset(folder, threshold=0.1, num_replicas=2, rank=2)


def test_few_row_groups_are_sliced_between_readers(tmp_path: Path) -> None:
    lists = _labels(500, seed=5)
    table = pa.table({"id": np.arange(500), "labels": pa.array(lists, type=pa.list_(pa.string()))})
    pq.write_table(table, tmp_path / "one.parquet")  # a single row group
    ds = RepeatFactorIterableDataset(tmp_path, threshold=0.3, seed=2, index_key="_row")
    assert len(ds.units) == 1
    parts = ds.assignment(0, 4)
    assert all(parts) and sum(hi - lo for p in parts for _, lo, hi in p) == 500
    ids = []
    for rank in range(2):
        d = RepeatFactorIterableDataset(
            tmp_path, threshold=0.3, seed=2, num_replicas=2, rank=rank, index_key="_row"
        )
        got = [r["_row"] for r in DataLoader(d, batch_size=None, num_workers=2)]
        assert len(got) > 100  # every rank has work
        ids.extend(got)
    counts = np.bincount(ids, minlength=500)
    np.testing.assert_array_equal(counts, ds.epoch_counts(0))
