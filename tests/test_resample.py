"""Rules of each resampler on small hand-made cases, and the contract every resampler keeps."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.measures import irlbl_of_counts as irlbl
from mlbalance.measures import mean_ir_of_counts as mean_ir
from mlbalance.resample import MLROS, MLRUS, MLSMOTE, REMEDIAL, TargetCounts
from mlbalance.resample.base import imbalance_measures


def _random_case(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.array([0.5, 0.4, 0.3, 0.1, 0.05, 0.03, 0.02, 0.2])
    Y = (rng.random((n, len(p))) < p).astype(np.int64)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    return X, Y


ALL = [
    lambda: MLROS(percentage=30, random_state=3),
    lambda: MLRUS(percentage=20, random_state=3),
    lambda: MLSMOTE(k_neighbors=3, random_state=3),
    lambda: REMEDIAL(random_state=3),
    lambda: TargetCounts(min_rows=25, max_rows=80, max_copies=5, random_state=3),
]


# --- the common contract -----------------------------------------------------------------------
@pytest.mark.parametrize("make", ALL)
def test_contract(make):
    X, Y = _random_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = make()
        Xa, Ya = a.fit_resample(X, Y)
        b = make()
        Xb, Yb = b.fit_resample(X, Y)
    # same seed, same output
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(Ya, Yb)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    # dtypes and containers kept
    assert isinstance(Xa, np.ndarray) and Xa.dtype == np.float32
    assert isinstance(Ya, np.ndarray) and Ya.dtype == Y.dtype and Ya.shape[1] == Y.shape[1]
    assert len(Xa) == len(Ya) == len(a.sample_indices_)
    # indices consistent: every non-synthetic row is a copy of its source row
    res = a.result_
    idx = a.sample_indices_
    real = ~res.synthetic
    np.testing.assert_array_equal(Xa[real], X[idx[real]])
    unchanged = real & ~res.relabelled
    np.testing.assert_array_equal(Ya[unchanged], Y[idx[unchanged]])
    # relabelled = copied rows whose labels changed; synthetic rows are counted once, as new
    changed = (Ya != Y[idx]).any(axis=1)
    np.testing.assert_array_equal(res.relabelled, real & changed)
    # every input row accounted for
    rep = a.report_
    assert rep["relabelled"] <= rep["kept"] + rep["extra_copies"]
    assert rep["input_rows"] == len(X)
    assert rep["kept"] + rep["dropped"] == rep["input_rows"]
    assert rep["kept"] + rep["extra_copies"] + rep["synthetic"] == rep["output_rows"]
    assert (idx >= 0).all() and (idx < len(X)).all()


@pytest.mark.parametrize("make", ALL)
def test_contract_other_seed_differs_or_deterministic(make):
    X, Y = _random_case()
    r = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first_x, _ = r.fit_resample(X, Y)
        first = r.sample_indices_.copy()
        r.random_state = 4
        second_x, _ = r.fit_resample(X, Y)
    if isinstance(r, REMEDIAL):
        np.testing.assert_array_equal(first, r.sample_indices_)  # deterministic by design
    elif isinstance(r, MLSMOTE):
        assert not np.array_equal(first_x, second_x)
    else:
        assert not np.array_equal(first, r.sample_indices_)


@pytest.mark.parametrize("make", ALL)
def test_containers_restored(make):
    X, Y = _random_case(120, seed=1)
    names = [f"l{i}" for i in range(Y.shape[1])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, y_lm = make().fit_resample(X, LabelMatrix.from_dense(Y, names))
        _, y_df = make().fit_resample(X, pd.DataFrame(Y, columns=names))
        _, y_sp = make().fit_resample(X, sp.csr_matrix(Y))
        _, y_ls = make().fit_resample(X, LabelMatrix.from_dense(Y, names).to_lists())
    assert isinstance(y_lm, LabelMatrix) and y_lm.names == tuple(names)
    assert list(y_df.columns) == names
    assert sp.issparse(y_sp)
    assert isinstance(y_ls, list)
    np.testing.assert_array_equal(y_lm.to_dense(), y_df.to_numpy())
    np.testing.assert_array_equal(y_lm.to_dense(), y_sp.toarray())


@pytest.mark.parametrize(
    ("make", "msg"),
    [
        (lambda: MLROS(percentage=0), "percentage"),
        (lambda: MLROS(percentage=101), "percentage"),
        (lambda: MLRUS(percentage=100), "percentage"),
        (lambda: MLROS(percentage="x"), "percentage"),
        (lambda: MLSMOTE(k_neighbors=0), "k_neighbors"),
        (lambda: MLSMOTE(label_generation="vote"), "label_generation"),
        (lambda: TargetCounts(), "min_rows and/or max_rows"),
        (lambda: TargetCounts(min_rows=10, max_rows=5), "must not exceed"),
        (lambda: TargetCounts(min_rows=0), "min_rows"),
        (lambda: MLROS(random_state=-1), "random_state"),
    ],
)
def test_parameters_checked_in_one_place(make, msg):
    X, Y = _random_case(50)
    with pytest.raises(ParameterError, match=msg):
        make().fit_resample(X, Y)


def test_init_only_stores():
    r = MLROS(percentage=-5)  # no error until used
    assert r.get_params() == {"percentage": -5, "random_state": None}
    assert "MLROS(percentage=-5" in repr(r)
    with pytest.raises(TypeError):
        MLROS(25)  # keyword-only


def test_rows_mismatch():
    X, Y = _random_case(50)
    with pytest.raises(InputError, match="rows"):
        MLROS().fit_resample(X[:10], Y)


def test_text_rows_carried_by_index():
    texts = [f"text {i}" for i in range(300)]
    _, Y = _random_case()
    r = MLROS(random_state=0)
    t_res, _ = r.fit_resample(texts, Y)
    assert t_res == [texts[i] for i in r.sample_indices_]


# --- measures ------------------------------------------------------------------------------------
def test_irlbl_and_mean_ir():
    counts = np.array([10, 2, 1, 0])
    np.testing.assert_allclose(irlbl(counts)[:3], [1, 5, 10])
    assert np.isinf(irlbl(counts)[3])
    assert mean_ir(counts) == pytest.approx(16 / 3)
    m = imbalance_measures(LabelMatrix.from_lists([["a", "b"], ["a"], ["a"], ["a"]]))
    # IRLbl a=1, b=4; row 0 SCUMBLE = 1 - sqrt(4)/2.5 = 0.2; mean over 4 rows
    assert m["scumble"] == pytest.approx(0.2 / 4)
    assert m["max_ir"] == 4 and m["mean_ir"] == 2.5


# --- ML-ROS ----------------------------------------------------------------------------------------
def _reference_mlros(Y: np.ndarray, n_clone: int, u: np.ndarray) -> list[int]:
    """The paper's loop in plain Python (exact stop; a bag leaves at its turn when done)."""
    counts = Y.sum(0).astype(float)
    target = mean_ir(counts)
    ir = irlbl(counts)
    bags = [
        (lab, list(np.flatnonzero(Y[:, lab])))
        for lab in range(Y.shape[1])
        if np.isfinite(ir[lab]) and ir[lab] > target
    ]
    active = [True] * len(bags)
    clones: list[int] = []
    while len(clones) < n_clone and any(active):
        for b, (lab, rows) in enumerate(bags):
            if len(clones) >= n_clone:
                break
            if not active[b]:
                continue
            if counts.max() / counts[lab] <= target:
                active[b] = False
                continue
            r = rows[min(int(u[len(clones)] * len(rows)), len(rows) - 1)]
            clones.append(r)
            counts += Y[r]
            if counts.max() / counts[lab] <= target:
                active[b] = False
    return clones


def test_mlros_matches_reference_loop():
    _, Y = _random_case(400, seed=5)
    r = MLROS(percentage=40, random_state=11)
    r.sample(Y)
    u = np.random.default_rng(11).random(160)
    expected = _reference_mlros(Y, 160, u)
    np.testing.assert_array_equal(r.sample_indices_[400:], expected)


def test_mlros_single_bag_leaves_when_meanir_reached():
    # counts a=10, b=2, c=1 -> IRLbl 1, 5, 10; MeanIR 16/3: only c is minority
    rows = [["a"]] * 10 + [["b"]] * 2 + [["c"]]
    r = MLROS(percentage=100, random_state=0)
    res = r.sample(rows)
    assert list(r.minority_labels_) == [2]
    # one clone of row 12 brings IRLbl(c) to 5 <= MeanIR: the bag leaves, the loop ends
    np.testing.assert_array_equal(res.indices[13:], [12])
    assert list(r.bag_left_at_) == [1]


def test_mlros_round_robin_and_exact_stop():
    # two minority bags (c: rows 20-21, d: rows 22-23) far below MeanIR
    rows = [["a"]] * 20 + [["c"]] * 2 + [["d"]] * 2 + [["b"]] * 16
    r = MLROS(percentage=10, random_state=1)  # floor(40 * 0.1) = 4 clones exactly
    res = r.sample(rows)
    clones = res.indices[40:]
    assert len(clones) == 4
    bag_of = ["c" if i in (20, 21) else "d" for i in clones]
    assert bag_of == ["c", "d", "c", "d"]


def test_mlros_clone_raises_cooccurring_labels():
    rows = [["a"]] * 30 + [["c", "a"]] * 3 + [["b"]] * 20
    r = MLROS(percentage=100, random_state=0)
    res = r.sample(rows)
    out = res.labels.counts()
    # each clone of a 'c' row also adds to 'a' (the max): IRLbl is recomputed with the new max
    n_clones = res.n_output - 53
    assert out[res.labels.label_index()["a"]] == 33 + n_clones
    c = out[res.labels.label_index()["c"]]
    assert out.max() / c <= r.mean_ir_
    assert out.max() / (c - 1) > r.mean_ir_  # it left at the first clone that reached MeanIR


def test_mlros_says_why_it_stopped_before_percentage():
    rows = [["a"]] * 10 + [["b"]] * 2 + [["c"]]
    res = MLROS(percentage=100, random_state=0).sample(rows)
    assert res.n_output == 14  # one clone of the one minority row reaches MeanIR
    (note,) = res.notes
    assert "stopped after 1 clone(s): every minority bag (1) reached MeanIR (5.333)" in note
    assert "asked for 100% of 13 rows = 13 clones" in note
    assert res.report()["notes"] == [note]
    asked_nothing = MLROS(percentage=5, random_state=0).sample(rows)
    assert asked_nothing.notes == ("ML-ROS added nothing: asked for 5% of 13 rows = 0 clones",)
    full = MLROS(percentage=10, random_state=1).sample(
        [["a"]] * 20 + [["c"]] * 2 + [["d"]] * 2 + [["b"]] * 16
    )
    assert full.notes == ()  # it made the 4 clones asked for


def _mlrus_raises_mean_ir() -> list[list[str]]:
    """A head label, ten mid labels and a rare one: ML-RUS halves the mid labels' headroom."""
    mids = [f"m{i}" for i in range(10)]
    return [["a"]] * 1000 + [[m] for m in mids for _ in range(200)] + [["r"]] * 10


def test_resampler_that_makes_imbalance_worse_warns_with_both_figures():
    rows = _mlrus_raises_mean_ir()
    with pytest.warns(UserWarning, match=r"MLRUS made the imbalance worse: MeanIR 12\.58 -> ") as w:
        res = MLRUS(percentage=25, random_state=0).sample(rows)
    assert len(w) == 1 and "\n" not in str(w[0].message)
    before, after = res.worse["mean_ir"]
    assert after > before and "max_ir" not in res.worse  # the rare label's IRLbl fell
    assert "IRLbl rose most for 'm" in str(w[0].message)
    assert res.report()["worse"] == {"mean_ir": {"before": before, "after": after}}
    assert str(w[0].message) in res.notes
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a method that lowers MeanIR says nothing
        better = MLROS(random_state=0).sample(rows)
    assert better.worse == {}


def test_mlsmote_counts_synthetic_rows_once():
    X, Y = _random_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = MLSMOTE(k_neighbors=3, random_state=0)
        r.fit_resample(X, Y)
    rep = r.report_
    assert rep["synthetic"] == len(r.source_rows_) > 0
    assert rep["relabelled"] == 0  # was reported as "synthetic 130, relabelled 130"


def test_mlros_nothing_to_do():
    res = MLROS().sample([["a"], ["b"], ["a", "b"]])
    np.testing.assert_array_equal(res.indices, [0, 1, 2])


# --- ML-RUS ----------------------------------------------------------------------------------------
def _reference_mlrus(Y: np.ndarray, n_delete: int, u: np.ndarray) -> set[int]:
    counts = Y.sum(0).astype(float)
    target = mean_ir(counts)
    ir = irlbl(counts)
    labs = [lab for lab in range(Y.shape[1]) if np.isfinite(ir[lab]) and ir[lab] < target]
    bags = {lab: list(np.flatnonzero(Y[:, lab])) for lab in labs}
    active = dict.fromkeys(labs, True)
    deleted: set[int] = set()

    def done(lab: int) -> bool:
        return not bags[lab] or counts[lab] == 0 or counts.max() / counts[lab] >= target

    while len(deleted) < n_delete and any(active.values()):
        for lab in labs:
            if len(deleted) >= n_delete:
                break
            if not active[lab]:
                continue
            if done(lab):
                active[lab] = False
                continue
            rows = bags[lab]
            r = rows[min(int(u[len(deleted)] * len(rows)), len(rows) - 1)]
            deleted.add(r)
            counts -= Y[r]
            for other in labs:  # swap-remove r from every bag it is in
                lst = bags[other]
                if r in lst:
                    at = lst.index(r)
                    lst[at] = lst[-1]
                    lst.pop()
            if done(lab):
                active[lab] = False
    return deleted


def test_mlrus_matches_reference_loop():
    _, Y = _random_case(300, seed=7)
    r = MLRUS(percentage=30, random_state=2)
    res = r.sample(Y)
    u = np.random.default_rng(2).random(90)
    expected = _reference_mlrus(Y, 90, u)
    assert set(range(300)) - set(res.indices.tolist()) == expected


def test_mlrus_deletes_only_majority_rows_and_stops():
    rows = [["a"]] * 40 + [["b"]] * 30 + [["c"]] * 3 + [["d"]] * 2
    r = MLRUS(percentage=20, random_state=0)  # 15 deletions at most
    res = r.sample(rows)
    dropped = set(range(75)) - set(res.indices.tolist())
    assert len(dropped) <= 15
    assert all(i < 70 for i in dropped)  # only rows of majority labels a, b
    assert len(dropped) == 15  # neither bag reaches MeanIR (~10.7) within 15 deletions


def test_mlrus_bag_leaves():
    # a=20, b=10, c=2, d=1 rows -> IRLbl 1, 2, 10, 20; MeanIR 8.25: bags a and b, deleted in
    # turn (a, b, a, b, ...). After k rounds IRLbl(b) = (20 - k) / (10 - k) >= 8.25 first at
    # k = 9, so bag b leaves after the 18th deletion; then only bag a loses rows.
    rows = [["a"]] * 20 + [["b"]] * 10 + [["c"]] * 2 + [["d"]]
    r = MLRUS(percentage=60, random_state=0)  # floor(33 * 0.6) = 19 deletions
    res = r.sample(rows)
    assert list(r.majority_labels_) == [0, 1]
    assert list(r.bag_left_at_) == [-1, 18]
    c = dict(zip(res.labels.names, res.labels.counts().tolist()))
    assert c == {"a": 10, "b": 1, "c": 2, "d": 1}  # 10 from a, 9 from b; c, d untouched


# --- MLSMOTE ---------------------------------------------------------------------------------------
def _smote_case():
    # label m (minority) on rows 0-3; label a on everything else (majority)
    X = np.array(
        [
            [0.0],
            [1.0],
            [2.0],
            [10.0],
            [0.1],
            [50],
            [51],
            [52],
            [53],
            [54],
            [55],
            [56],
            [57],
            [58],
            [59],
            [60],
        ]
    )
    rows = [["m", "a"], ["m", "a"], ["m", "a"], ["m"]] + [["a"]] * 12
    return X, rows  # IRLbl a=1, m=3.75; MeanIR 2.375: m is the only minority label


def test_mlsmote_seeds_are_the_minority_bag():
    X, rows = _smote_case()
    r = MLSMOTE(k_neighbors=2, random_state=0)
    r.fit_resample(X, rows)
    np.testing.assert_array_equal(np.sort(r.source_rows_), [0, 1, 2, 3])
    # neighbours come from the bag only (row 4 at x=0.1 is closer to row 0 but not in the bag)
    assert set(r.neighbour_rows_.tolist()) <= {0, 1, 2, 3}
    assert (r.neighbour_rows_ != r.source_rows_).all()
    # seed 0 (x=0): its 2 nearest in the bag are rows 1 and 2
    assert r.neighbour_rows_[r.source_rows_ == 0][0] in (1, 2)
    assert r.neighbour_rows_[r.source_rows_ == 3][0] in (1, 2)


def test_mlsmote_interpolates_toward_the_neighbour():
    X, rows = _smote_case()
    r = MLSMOTE(k_neighbors=2, random_state=0)
    Xr, _ = r.fit_resample(X, rows)
    syn = Xr[len(X) :, 0]
    s, nb = X[r.source_rows_, 0], X[r.neighbour_rows_, 0]
    assert ((syn >= np.minimum(s, nb)) & (syn <= np.maximum(s, nb))).all()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("ranking", {"m", "a"}), ("union", {"m", "a", "b"}), ("intersection", {"m"})],
)
def test_mlsmote_label_generation(rule, expected):
    X = np.array([[0.0], [1.0], [2.0]] + [[100.0 + i] for i in range(20)])
    rows = [["m", "a"], ["m", "a"], ["m", "b"]] + [["a", "b"]] * 20  # only m is minority
    r = MLSMOTE(k_neighbors=2, label_generation=rule, random_state=0)
    _, Yr = r.fit_resample(X, rows)
    syn = Yr[len(X) :]
    # with k=2 each seed's neighbours are the other two bag rows: votes m=3, a=2, b=1
    assert all(set(labs) == expected for labs in syn)
    assert len(syn) == 3


def test_mlsmote_small_bag_warns_and_uses_what_there_is():
    X, rows = _smote_case()
    with pytest.warns(UserWarning, match="fewer than k"):
        r = MLSMOTE(k_neighbors=5, random_state=0)
        r.fit_resample(X, rows)
    assert r.small_bags_ == {"m": 4}
    assert len(r.source_rows_) == 4


def test_mlsmote_sparse_features():
    X, Y = _random_case(200, seed=2)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0))
    r = MLSMOTE(k_neighbors=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xr, Yr = r.fit_resample(Xs, Y)
    assert sp.issparse(Xr) and Xr.shape[0] == Yr.shape[0] > 200
    dense = Xs.toarray()
    syn = Xr[200:].toarray()
    lo = np.minimum(dense[r.source_rows_], dense[r.neighbour_rows_])
    hi = np.maximum(dense[r.source_rows_], dense[r.neighbour_rows_])
    assert ((syn >= lo - 1e-6) & (syn <= hi + 1e-6)).all()


@pytest.mark.parametrize(
    ("X", "msg"),
    [
        (np.array([["a"], ["b"]], dtype=object), "numeric"),
        (np.array([[np.nan], [1.0]]), "row 0, feature 0"),
        (np.array([[np.inf], [1.0]]), "finite"),
        (np.zeros(2), "2-D"),
    ],
)
def test_mlsmote_bad_features(X, msg):
    with pytest.raises(InputError, match=msg):
        MLSMOTE().fit_resample(X, [["a"], ["b"]])


def test_mlsmote_lowers_mean_ir():
    X, Y = _random_case(400, seed=3)
    before = mean_ir(Y.sum(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, Yr = MLSMOTE(random_state=0).fit_resample(X, Y)
    assert mean_ir(Yr.sum(0)) < before


# --- REMEDIAL --------------------------------------------------------------------------------------
def test_remedial_splits_high_scumble_rows():
    # a frequent (20 rows), r rare (2 rows): rows 0 and 1 mix them
    rows = [["a", "r"], ["a", "r"]] + [["a"]] * 18 + [["b"]] * 10 + [["b", "a"]]
    r = REMEDIAL()
    res = r.sample(rows)
    np.testing.assert_array_equal(r.decoupled_rows_, [0, 1])
    lists = res.labels.to_lists()
    assert lists[0] == ["a"] and lists[1] == ["a"]  # originals keep the frequent label
    assert lists[31:] == [["r"], ["r"]]  # copies carry the rare one
    np.testing.assert_array_equal(res.indices[31:], [0, 1])
    assert lists[30] == ["a", "b"]  # both frequent: SCUMBLE 0 -> unchanged
    assert res.relabelled.sum() == 4


def test_remedial_leaves_all_minority_rows():
    # x, y both rare with different IRLbl: splitting would leave an empty row
    rows = [["x", "y"], ["y"]] + [["a"]] * 30 + [["b"]] * 30 + [["c"]] * 30 + [["d"]] * 30
    r = REMEDIAL()
    res = r.sample(rows)
    assert r.scumble_threshold_ > 0 and len(r.decoupled_rows_) == 0
    assert res.n_output == res.n_input


# --- target counts ---------------------------------------------------------------------------------
def test_target_raise_and_copy_cap():
    rows = [["a"]] * 50 + [["t"]] * 3 + [["u"]]
    r = TargetCounts(min_rows=10, max_copies=2, random_state=0)
    with pytest.warns(UserWarning, match="cannot reach"):
        res = r.sample(rows)
    c = dict(zip(res.labels.names, res.labels.counts()))
    assert c["t"] == 9  # 3 rows + at most 2 copies each
    assert c["u"] == 3
    assert r.shortfall_ == {"t": 1, "u": 7}
    assert res.copies().max() <= 3


def test_target_spreads_copies_evenly():
    rows = [["a"]] * 50 + [["t"]] * 4
    res = TargetCounts(min_rows=10, max_copies=None, random_state=0).sample(rows)
    copies = res.copies()[50:]
    assert copies.sum() == 10 and copies.max() - copies.min() <= 1


def test_target_cap():
    rows = [["a"]] * 100 + [["a", "t"]] * 5 + [["b"]] * 30
    res = TargetCounts(max_rows=40, random_state=0).sample(rows)
    c = dict(zip(res.labels.names, res.labels.counts()))
    assert c["a"] == 40 and c["t"] == 5 and c["b"] == 30
    # pass 1 drops only rows whose labels are all above the cap: the 't' rows survive
    assert set(range(100, 105)) <= set(res.indices.tolist())


# --- the command's summary --------------------------------------------------------------------
def _rows_file(tmp_path, rows) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir(exist_ok=True)  # not under pytest's test_* folder name
    path = tmp_path / "data" / f"train{len(rows)}.parquet"
    pq.write_table(pa.table({"id": list(range(len(rows))), "labels": rows}), path)
    return str(path)


def test_cli_summary_says_what_the_method_did_other_than_asked(tmp_path, capsys):
    import json

    from mlbalance.cli import main

    data = _rows_file(tmp_path, _mlrus_raises_mean_ir())
    out = tmp_path / "rus"
    assert main(["resample", data, "--method", "ml-rus", "--out", str(out), "--json", "-"]) == 0
    captured = capsys.readouterr()
    manifest = json.loads(captured.out)  # with --json - stdout holds the JSON only
    assert manifest["report"]["worse"]["mean_ir"]["after"] > 12.58
    assert "mlbalance: warning: MLRUS made the imbalance worse: MeanIR 12.58" in captured.err
    assert "note: MLRUS made the imbalance worse" in captured.err  # the summary, on stderr
    assert "mean_ir" in captured.err and "worse" in captured.err
    small = _rows_file(tmp_path, [["a"]] * 10 + [["b"]] * 2 + [["c"]])
    assert main(["resample", small, "--method", "ml-ros", "--percentage", "100",
                 "--out", str(tmp_path / "ros")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "note: ML-ROS stopped after 1 clone(s)" in printed and "= 13 clones" in printed


def test_cli_refuses_a_flag_of_another_method(tmp_path, capsys):
    from mlbalance.cli import main

    data = _rows_file(tmp_path, [["a"]] * 10 + [["b"]] * 2)
    for args, flags in (
        (["--method", "ml-ros", "--k", "3"], "--k"),
        (
            ["--method", "mlsmote", "--percentage", "5", "--max-copies", "2"],
            "--max-copies, --percentage",
        ),
    ):
        assert main(["resample", data, "--out", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"mlbalance: error: --method {args[1]} does not use {flags}"
