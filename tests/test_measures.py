"""Imbalance measures: equal to mldr's reference values on the MULAN sets; invariances."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MULAN_SETS
from mlbalance import InputError, ParameterError
from mlbalance import _pairs as pairs
from mlbalance import measures as M
from mlbalance.labels import LabelMatrix

REL = 1e-14  # mldr stores 15 significant digits: this is every stored digit, give or take 1 in the last


# --------------------------------------------------------------------------------------------
# the reference: R package mldr on the MULAN sets
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mulan_measures(shared_datasets):
    from mlbalance.io.arff import read_arff

    out = {}
    for name in MULAN_SETS:
        folder = shared_datasets / "mulan" / name
        features, labels = read_arff(folder / f"{name}.arff")
        out[name] = (
            folder,
            features.shape[1],
            labels,
            M.compute_measures(labels, n_features=features.shape[1]),
        )
    return out


def _close(got: float, want: float) -> bool:
    if want == 0:
        return got == 0 or abs(got) < 1e-15
    return abs(got - want) <= REL * abs(want)


@pytest.mark.mulan
@pytest.mark.parametrize("name", MULAN_SETS)
def test_dataset_measures_equal_mldr(mulan_measures, name):
    folder, n_features, labels, m = mulan_measures[name]
    ref = dict(
        line.split("\t")
        for line in (folder / "reference_measures.tsv").read_text().split("\n")
        if line
    )
    ints = {
        "num.instances": m.rows,
        "num.labels": m.labels,
        "num.inputs": n_features,
        "num.labelsets": m.labelsets.distinct,
        "num.single.labelsets": m.labelsets.single,
        "max.frequency": m.labelsets.max_frequency,
    }
    for key, got in ints.items():
        assert got == int(ref[key]), (name, key)
    floats = {
        "cardinality": m.cardinality,
        "density": m.density,
        "meanIR": m.mean_ir,
        "scumble": m.scumble,
        "scumble.cv": m.scumble_cv,
        "tcs": m.tcs,
    }
    for key, got in floats.items():
        assert _close(got, float(ref[key])), (name, key, got, ref[key])
    # the single-measure functions agree with compute_measures
    assert M.mean_ir(labels) == m.mean_ir
    assert M.scumble(labels) == m.scumble
    assert M.tcs(labels, n_features) == m.tcs
    assert M.cardinality(labels) == m.cardinality


@pytest.mark.mulan
@pytest.mark.parametrize("name", MULAN_SETS)
def test_label_measures_equal_mldr(mulan_measures, name):
    folder, _, labels, m = mulan_measures[name]
    ref = pd.read_csv(folder / "reference_labels.csv", index_col=0)
    assert list(ref.index) == list(labels.names)  # ARFF attribute order, as mldr
    np.testing.assert_array_equal(m.counts, ref["count"].to_numpy())
    for col, got in (
        ("freq", m.frequency),
        ("IRLbl", m.irlbl),
        ("SCUMBLE", m.label_scumble),
        ("SCUMBLE.CV", m.label_scumble_cv),
    ):
        want = ref[col].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name} {col}")
        ok = ~np.isnan(want)
        for g, w in zip(got[ok], want[ok], strict=True):
            assert _close(float(g), float(w)), (name, col, g, w)


@pytest.mark.mulan
def test_cvir_from_reference_irlbl(mulan_measures):
    for name, (folder, _, _, m) in mulan_measures.items():
        ir = pd.read_csv(folder / "reference_labels.csv")["IRLbl"].to_numpy()
        want = ir.std(ddof=1) / ir.mean()
        assert abs(m.cvir - want) <= 1e-12 * want, name
        assert m.max_ir == pytest.approx(ir.max(), rel=1e-13)


# --------------------------------------------------------------------------------------------
# small cases by hand
# --------------------------------------------------------------------------------------------
def test_by_hand():
    y = LabelMatrix.from_lists([["a", "b"], ["a"], ["a", "c"], [], ["a"]], names=["a", "b", "c"])
    m = M.compute_measures(y)
    assert m.counts.tolist() == [4, 1, 1]
    np.testing.assert_allclose(m.irlbl, [1.0, 4.0, 4.0])
    assert m.mean_ir == pytest.approx(3.0)
    assert m.max_ir == 4.0
    assert m.cvir == pytest.approx(np.std([1, 4, 4], ddof=1) / 3)
    row = 1 - math.sqrt(4.0) / 2.5  # rows {a,b} and {a,c}
    np.testing.assert_allclose(M.row_scumble(y), [row, 0, row, 0, 0])
    assert m.scumble == pytest.approx(2 * row / 5)
    assert m.rows_without_labels == 1
    assert m.cardinality == pytest.approx(6 / 5)
    assert m.density == pytest.approx(6 / 15)
    assert m.labelsets == M.LabelsetStats(distinct=4, single=3, max_frequency=2)
    np.testing.assert_allclose(m.label_scumble, [row / 2, row, row])
    assert np.isnan(m.label_scumble_cv[1]) and np.isnan(m.label_scumble_cv[2])
    assert m.minority.tolist() == [False, True, True]
    assert m.tcs == pytest.approx(math.log(3 * 4))
    assert M.tcs(y, 10) == pytest.approx(math.log(10 * 3 * 4))


def test_label_without_rows_is_infinitely_rare_and_left_out_of_mean_ir():
    y = LabelMatrix.from_lists([["a", "b"], ["a"]], names=["a", "b", "gone"])
    ir = M.irlbl(y)
    assert ir.tolist() == [1.0, 2.0, math.inf]
    assert M.mean_ir(y) == 1.5 and M.max_ir(y) == 2.0
    assert M.minority_labels(y).tolist() == [False, True, False]
    sc, cv = M.label_scumble(y)
    assert sc[2] == 0.0 and np.isnan(cv[2])


def test_all_rows_empty():
    y = LabelMatrix.from_lists([[], []], names=["a"])
    m = M.compute_measures(y)
    assert math.isnan(m.mean_ir) and m.scumble == 0.0 and m.scumble_cv == 0.0
    assert m.labelsets == M.LabelsetStats(1, 0, 2)


def test_empty_dataset_is_an_input_error():
    y = LabelMatrix(sp.csr_matrix((0, 3), dtype=np.uint8), ("a", "b", "c"))
    with pytest.raises(InputError, match="empty"):
        M.compute_measures(y)


def test_scumble_of_overflowing_products_uses_logs():
    # 400 labels of which one is frequent: a row with 300 rare labels has prod IRLbl = 1e3^300
    n_labels = 400
    rows = [[0]] * 1000 + [list(range(1, 301))] + [[j] for j in range(301, 400)]
    y = LabelMatrix.from_lists(rows, names=[str(i) for i in range(n_labels)])
    ir = M.irlbl(y)
    vals = ir[1:301]
    want = 1 - math.exp(np.log(vals).mean()) / vals.mean()
    got = M.row_scumble(y)[1000]
    assert math.isfinite(got) and got == pytest.approx(want, abs=1e-12)


def test_rare_for_splits():
    counts = np.array([0, 1, 4, 5, 9, 10, 100])
    assert M.rare_for_folds(counts, 5).tolist() == [True, True, True, False, False, False, False]
    assert M.rare_for_test(counts, 0.1).tolist() == [True, True, True, True, True, False, False]
    assert M.rare_for_test(np.array([1, 2]), 0.5).tolist() == [True, False]
    with pytest.raises(ParameterError):
        M.rare_for_folds(counts, 1)
    with pytest.raises(ParameterError):
        M.rare_for_test(counts, 1.0)


# --------------------------------------------------------------------------------------------
# co-occurrence and labelsets against brute force
# --------------------------------------------------------------------------------------------
label_rows = st.integers(2, 30).flatmap(
    lambda n_labels: st.tuples(
        st.just(n_labels),
        st.lists(st.sets(st.integers(0, n_labels - 1), max_size=n_labels), min_size=1, max_size=40),
    )
)


def _matrix(n_labels: int, rows: list[set[int]]) -> LabelMatrix:
    return LabelMatrix.from_lists(
        [sorted(r) for r in rows], names=[str(i) for i in range(n_labels)]
    )


@settings(max_examples=60, deadline=None)
@given(label_rows)
def test_cooccurrence_is_yty(data):
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    dense = y.to_dense(np.int64)
    np.testing.assert_array_equal(M.cooccurrence(y).toarray(), dense.T @ dense)


@settings(max_examples=40, deadline=None)
@given(label_rows, st.integers(0, 12))
def test_cooccurrence_and_top_pairs_sparse_path(data, k):
    # beyond DENSE_MAX_LABELS labels: label-by-label counts, never a labels x labels array
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    dense = y.to_dense(np.int64)
    want = dense.T @ dense
    dense_top = M.top_pairs(y, k)
    old = pairs.DENSE_MAX_LABELS
    pairs.DENSE_MAX_LABELS = 0  # force the sparse path
    try:
        np.testing.assert_array_equal(M.cooccurrence(y).toarray(), want)
        assert M.top_pairs(y, k) == dense_top == _brute_top_pairs(want, k)
        sub = [n_labels - 1, 0] if n_labels > 1 else [0]
        np.testing.assert_array_equal(M.cooccurrence(y, sub).toarray(), want[np.ix_(sub, sub)])
    finally:
        pairs.DENSE_MAX_LABELS = old


def _brute_top_pairs(cooc: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    found = [
        (int(cooc[i, j]), i, j)
        for i in range(cooc.shape[0])
        for j in range(i + 1, cooc.shape[0])
        if cooc[i, j] > 0
    ]
    found.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(i, j, c) for c, i, j in found[:k]]


def test_a_row_with_thousands_of_labels_needs_no_labels_squared_memory(monkeypatch):
    # One row with 5,000 of 20,000 labels has 12.5M label pairs: analyse used to build all
    # of them (a row of 20,000 labels took 12 GB). Top pairs now come from label-by-label
    # counts in a bounded heap; the full matrix, if asked for, can be refused by size.
    rng = np.random.default_rng(0)
    n_labels = 20_000
    lists = [sorted(rng.choice(n_labels, size=3, replace=False).tolist()) for _ in range(2000)]
    lists.append(list(range(0, n_labels, 4)))  # the wide row
    lists += [[7, 11]] * 5 + [[3, 7]] * 4
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in lists])
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in lists])])
    csr = sp.csr_matrix((np.ones(cols.size, np.uint8), cols, ptr), shape=(len(lists), n_labels))
    y = LabelMatrix.from_sparse(csr, [f"l{i}" for i in range(n_labels)])

    def refuse(*args, **kwargs):
        raise AssertionError("analyse must not build the whole co-occurrence matrix")

    monkeypatch.setattr(pairs, "cooccurrence", refuse)
    monkeypatch.setattr(M, "cooccurrence", refuse)
    from mlbalance import analyse as analyse_mod

    monkeypatch.setattr(analyse_mod, "cooccurrence", refuse, raising=False)
    report = analyse_mod.analyse(y, top_pairs=3)
    top = [(p["labels"], p["rows"]) for p in report["top_pairs"]]
    assert top[0] == (["l7", "l11"], 5) and top[1] == (["l3", "l7"], 4)
    monkeypatch.undo()
    with pytest.raises(ParameterError, match="max_pairs"):
        M.cooccurrence(y, max_pairs=1_000_000)


def test_top_pairs_order():
    y = LabelMatrix.from_lists(
        [["a", "b"], ["a", "b"], ["b", "c"], ["a", "c"], ["a", "b", "c"]], names=["a", "b", "c"]
    )
    assert M.top_pairs(y, 2) == [(0, 1, 3), (0, 2, 2)]
    assert M.top_pairs(y, 0) == []


@settings(max_examples=60, deadline=None)
@given(label_rows)
def test_labelsets_match_counter(data):
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    c = Counter(frozenset(r) for r in rows)
    assert M.labelset_stats(y) == M.LabelsetStats(
        len(c), sum(v == 1 for v in c.values()), max(c.values())
    )


def test_labelsets_of_long_rows_use_verified_hashes():
    # 70,000 labels: only rows of <= 3 labels pack into 64 bits; longer rows are hashed
    rng = np.random.default_rng(3)
    base = [
        sorted(rng.choice(70_000, size=k, replace=False).tolist()) for k in rng.integers(0, 9, 300)
    ]
    rows = base + base[:50] + base[:10]
    y = LabelMatrix.from_lists(rows, names=[str(i) for i in range(70_000)])
    c = Counter(tuple(r) for r in rows)
    assert M.labelset_stats(y) == M.LabelsetStats(
        len(c), sum(v == 1 for v in c.values()), max(c.values())
    )


# --------------------------------------------------------------------------------------------
# invariances (hypothesis)
# --------------------------------------------------------------------------------------------
nonempty_rows = label_rows.filter(lambda d: any(d[1]))


def _dataset_values(m: M.Measures) -> list[float]:
    return [
        m.cardinality,
        m.density,
        m.mean_ir,
        m.max_ir,
        m.cvir,
        m.scumble,
        m.scumble_cv,
        m.tcs,
        m.labelsets.distinct,
        m.labelsets.single,
        m.labelsets.max_frequency,
        m.rows_without_labels,
    ]


@settings(max_examples=50, deadline=None)
@given(nonempty_rows, st.randoms(use_true_random=False))
def test_permuting_rows_changes_nothing(data, rnd):
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    perm = list(range(len(rows)))
    rnd.shuffle(perm)
    a, b = M.compute_measures(y), M.compute_measures(y.take(perm))
    np.testing.assert_allclose(_dataset_values(a), _dataset_values(b), rtol=1e-12)
    np.testing.assert_allclose(a.label_scumble, b.label_scumble, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(a.counts, b.counts)


@settings(max_examples=50, deadline=None)
@given(nonempty_rows, st.randoms(use_true_random=False))
def test_permuting_label_columns_permutes_per_label_values(data, rnd):
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    perm = list(range(n_labels))
    rnd.shuffle(perm)  # new column j holds old label perm[j]
    inv = np.argsort(perm)
    rows2 = [sorted(int(inv[lab]) for lab in r) for r in rows]
    y2 = _matrix(n_labels, rows2)
    a, b = M.compute_measures(y), M.compute_measures(y2)
    np.testing.assert_allclose(_dataset_values(a), _dataset_values(b), rtol=1e-12)
    np.testing.assert_array_equal(a.counts[perm], b.counts)
    np.testing.assert_array_equal(a.irlbl[perm], b.irlbl)
    np.testing.assert_allclose(a.label_scumble[perm], b.label_scumble, rtol=1e-12, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(nonempty_rows)
def test_duplicating_the_dataset_keeps_ratios(data):
    n_labels, rows = data
    y = _matrix(n_labels, rows)
    y2 = _matrix(n_labels, rows + rows)
    a, b = M.compute_measures(y), M.compute_measures(y2)
    np.testing.assert_array_equal(b.counts, 2 * a.counts)
    np.testing.assert_allclose(b.irlbl, a.irlbl)
    for key in ("cardinality", "density", "mean_ir", "max_ir", "cvir", "scumble", "tcs"):
        assert getattr(b, key) == pytest.approx(getattr(a, key), rel=1e-12, abs=1e-15), key
    np.testing.assert_allclose(b.label_scumble, a.label_scumble, rtol=1e-12, atol=1e-15)
    assert b.labelsets.distinct == a.labelsets.distinct
    assert b.labelsets.single == 0
    assert b.labelsets.max_frequency == 2 * a.labelsets.max_frequency


@settings(max_examples=40, deadline=None)
@given(nonempty_rows)
def test_measures_are_in_range(data):
    n_labels, rows = data
    m = M.compute_measures(_matrix(n_labels, rows))
    finite = m.irlbl[np.isfinite(m.irlbl)]
    assert (finite >= 1).all() and finite.min() == 1.0
    assert (
        (M.row_scumble(_matrix(n_labels, rows)) >= -1e-15)
        & (M.row_scumble(_matrix(n_labels, rows)) < 1)
    ).all()
    assert 0 <= m.density <= 1
    assert m.mean_ir <= m.max_ir


def _naive(rows: list[set[int]], n_labels: int) -> dict[str, object]:
    """mldr's formulas written out row by row in plain Python (an independent oracle)."""
    import statistics

    n = len(rows)
    counts = [sum(lab in r for r in rows) for lab in range(n_labels)]
    top = max(counts)
    ir = [top / c if c else math.inf for c in counts]
    present = [v for v in ir if math.isfinite(v)]
    row_sc = []
    for r in rows:
        if not r:
            row_sc.append(0.0)
            continue
        vals = [ir[lab] for lab in sorted(r)]
        gm = math.prod(vals) ** (1 / len(vals))
        row_sc.append(1 - gm / (sum(vals) / len(vals)))
    lab_sc, lab_cv = [], []
    for lab in range(n_labels):
        mine = [s for s, r in zip(row_sc, rows, strict=True) if lab in r]
        mean = sum(mine) / len(mine) if mine else 0.0
        lab_sc.append(mean)
        if len(mine) < 2:
            lab_cv.append(math.nan)
        else:
            lab_cv.append(0.0 if mean == 0 else statistics.stdev(mine) / mean)
    mean_sc = sum(row_sc) / n
    return {
        "counts": counts,
        "irlbl": ir,
        "mean_ir": statistics.fmean(present),
        "max_ir": max(present),
        "cvir": statistics.stdev(present) / statistics.fmean(present) if len(present) > 1 else 0.0,
        "scumble": mean_sc,
        "scumble_cv": (statistics.stdev(row_sc) / mean_sc) if n > 1 and mean_sc else 0.0,
        "label_scumble": lab_sc,
        "label_scumble_cv": lab_cv,
    }


@settings(max_examples=60, deadline=None)
@given(nonempty_rows)
def test_equals_a_naive_row_by_row_implementation(data):
    n_labels, rows = data
    m = M.compute_measures(_matrix(n_labels, rows))
    want = _naive(rows, n_labels)
    np.testing.assert_array_equal(m.counts, want["counts"])
    np.testing.assert_allclose(m.irlbl, want["irlbl"], rtol=1e-12)
    for key in ("mean_ir", "max_ir", "cvir", "scumble", "scumble_cv"):
        assert getattr(m, key) == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    np.testing.assert_allclose(m.label_scumble, want["label_scumble"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.label_scumble_cv, want["label_scumble_cv"], rtol=1e-7, atol=1e-9)


@pytest.mark.mulan
def test_printed_digits_match_mldr(mulan_measures):
    """Formatted as R prints them (15 significant digits), almost every value is identical."""
    import csv

    total = differ = 0
    for folder, _, _, m in mulan_measures.values():
        ref = dict(
            line.split("\t")
            for line in (folder / "reference_measures.tsv").read_text().split("\n")
            if line
        )
        for key, got in (
            ("cardinality", m.cardinality),
            ("density", m.density),
            ("meanIR", m.mean_ir),
            ("scumble", m.scumble),
            ("scumble.cv", m.scumble_cv),
            ("tcs", m.tcs),
        ):
            total += 1
            differ += f"{got:.15g}" != ref[key]
        rows = list(csv.reader((folder / "reference_labels.csv").open()))[1:]
        for i, row in enumerate(rows):
            for col, arr in (
                (3, m.frequency),
                (4, m.irlbl),
                (5, m.label_scumble),
                (6, m.label_scumble_cv),
            ):
                if row[col] != "NA":
                    total += 1
                    differ += f"{arr[i]:.15g}" != row[col]
    assert total == 2086
    assert differ <= 5, f"{differ} of {total} values differ from mldr in the 15th digit"


def test_labelsets_of_a_matrix_with_unsorted_indices():
    # a LabelMatrix built directly from a CSR whose rows list their labels out of order
    m = sp.csr_matrix(
        (np.ones(4, dtype=np.uint8), np.array([1, 0, 0, 1]), np.array([0, 2, 4])), shape=(2, 2)
    )
    m.has_sorted_indices = False
    y = LabelMatrix(m, ("a", "b"))
    assert M.labelset_stats(y) == M.LabelsetStats(1, 0, 2)
