"""Tests of mlbalance.samplers: repeat factors, the map-style samplers, the diagnostics."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.samplers import (
    AUTO_GROWTH,
    auto_threshold,
    class_aware_exposure,
    class_aware_row_probabilities,
    expected_epoch_growth,
    label_repeat_factors,
    repeat_exposure,
    repeat_factors,
    row_weights,
    stochastic_round,
)
from mlbalance.samplers._shard import per_rank_length, shard

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from mlbalance.samplers import ClassAwareSampler, RepeatFactorSampler  # noqa: E402


def _random_labels(n_rows: int = 300, n_labels: int = 12, seed: int = 0) -> LabelMatrix:
    """Long-tailed random labels: label j kept with probability ~ 0.5 / (j + 1)."""
    rng = np.random.default_rng(seed)
    p = 0.5 / np.arange(1, n_labels + 1)
    dense = (rng.random((n_rows, n_labels)) < p).astype(np.uint8)
    return LabelMatrix.from_dense(dense)


def _brute_factors(dense: np.ndarray, t: float, power: float, cap: float | None) -> np.ndarray:
    n = dense.shape[0]
    out = []
    for row in dense:
        best = 1.0
        for c in np.flatnonzero(row):
            f = dense[:, c].sum() / n
            r = max(1.0, (t / f) ** power)
            if cap is not None:
                r = min(r, cap)
            best = max(best, r)
        out.append(best)
    return np.array(out)


# --- repeat factors --------------------------------------------------------------------


def test_repeat_factors_detectron2_example() -> None:
    # detectron2 tests/data/test_sampler.py: categories {0,1}, {0}, {} at t = 0.5
    got = repeat_factors([[0, 1], [0], []], threshold=0.5)
    np.testing.assert_allclose(got, [math.sqrt(3 / 2), 1.0, 1.0])
    assert got.dtype == np.float64


@pytest.mark.parametrize(
    ("t", "power", "cap"), [(0.3, 0.5, None), (0.5, 1.0, None), (1.0, 0.5, 2.0)]
)
def test_repeat_factors_match_formula(t: float, power: float, cap: float | None) -> None:
    y = _random_labels()
    want = _brute_factors(y.to_dense(), t, power, cap)
    np.testing.assert_allclose(repeat_factors(y, t, power, cap), want)


def test_repeat_factors_inputs_and_edges() -> None:
    y = _random_labels(50, 5)
    np.testing.assert_array_equal(repeat_factors(y.matrix, 0.5), repeat_factors(y, 0.5))
    np.testing.assert_array_equal(repeat_factors(y.to_dense(), 0.5), repeat_factors(y, 0.5))
    assert (repeat_factors(y, 0.5, power=0.0) == 1.0).all()
    # rows with no label get 1; a matrix with no positives is all ones
    empty_rows = LabelMatrix.from_sparse(sp.csr_matrix((4, 3), dtype=np.uint8))
    np.testing.assert_array_equal(repeat_factors(empty_rows, 0.1), np.ones(4))
    # a label on one row of 100 at t = 1, power 1: factor 100
    lists = [["rare"]] + [["common"]] * 99
    assert repeat_factors(lists, 1.0, power=1.0)[0] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"threshold": 0.0}, "threshold", "threshold must be a number in (0, 1] or one of 'auto'"),
        ({"threshold": 1.5}, "threshold", "got 1.5"),
        ({"threshold": float("nan")}, "threshold", "got nan"),
        ({"threshold": "half"}, "threshold", "got 'half'"),
        ({"threshold": 0.1, "power": -0.5}, "power", "power must be a number in [0, inf)"),
        ({"threshold": 0.1, "max_repeat": 0.5}, "max_repeat", "max_repeat must be a number in"),
    ],
)
def test_repeat_factors_bad_parameters(kwargs: dict, param: str, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        repeat_factors([["a"], ["b"]], **kwargs)
    assert message in str(info.value)
    assert info.value.params == (param,)


# --- the derived threshold and the epoch growth ----------------------------------------------


@pytest.mark.parametrize(
    ("t", "power", "cap"), [(0.05, 0.5, None), (0.3, 1.0, None), (0.3, 0.5, 2.0), (1.0, 0.5, None)]
)
def test_expected_epoch_growth_is_the_mean_row_factor(t: float, power: float, cap) -> None:
    y = _random_labels(400, 12, seed=5)
    want = _brute_factors(y.to_dense(), t, power, cap).mean()
    assert expected_epoch_growth(y, t, power, cap) == pytest.approx(want, rel=1e-12)
    assert repeat_exposure(y, t, power, cap).epoch_growth == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("growth", [1.05, 1.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_threshold_grows_the_epoch_by_the_target(growth: float, seed: int) -> None:
    y = _random_labels(500, 15, seed=seed)
    t = auto_threshold(y, growth=growth)
    freq = y.counts() / y.n_rows
    assert freq[freq > 0].min() < t <= freq.max()
    assert expected_epoch_growth(y, t) == pytest.approx(growth, rel=1e-9)
    assert repeat_factors(y, t).mean() == pytest.approx(growth, rel=1e-9)
    # a rarer label never gets a smaller factor, whatever t
    per_label = label_repeat_factors(y.counts(), y.n_rows, t)
    order = np.argsort(freq)
    assert (np.diff(per_label[order]) <= 1e-12).all()


def test_threshold_auto_everywhere_it_is_accepted() -> None:
    y = _random_labels(300, 10, seed=4)
    t = auto_threshold(y)
    np.testing.assert_array_equal(repeat_factors(y, "auto"), repeat_factors(y, t))
    np.testing.assert_array_equal(row_weights(y, "auto"), repeat_factors(y, t))
    exposure = repeat_exposure(y, "auto")
    assert exposure.params["threshold"] == t
    assert exposure.epoch_growth == pytest.approx(AUTO_GROWTH, rel=1e-9)
    assert expected_epoch_growth(y, "auto") == pytest.approx(AUTO_GROWTH, rel=1e-9)
    with pytest.raises(ParameterError, match="auto_threshold") as info:
        label_repeat_factors(y.counts(), y.n_rows, "auto")
    assert info.value.params == ("threshold",)
    with pytest.raises(ParameterError, match="growth must be a number in") as info:
        auto_threshold(y, growth=1.0)
    assert info.value.params == ("growth",)


def test_auto_threshold_stops_at_the_most_frequent_label() -> None:
    # growth 3 is out of reach below the most frequent label (1.18x at t = 0.75): t stops there
    lists = [["a"]] * 3 + [["b"]]
    assert auto_threshold(lists, growth=3.0) == pytest.approx(0.75)
    # equally frequent labels: nothing to rebalance, and repeat_factors says so
    same = [["a"], ["b"], ["a"], ["b"]]
    assert auto_threshold(same) == pytest.approx(0.5)
    with pytest.warns(UserWarning, match="every label is on 2 of 4 rows"):
        assert (repeat_factors(same, "auto") == 1.0).all()
    assert auto_threshold([[], []]) == 1.0  # no label at all


def test_threshold_that_repeats_nothing_is_warned_with_the_figure() -> None:
    # GoEmotions' situation at LVIS's 0.001: every label more frequent than the threshold
    lists = [["a"]] * 900 + [["b"]] * 80 + [["c"]] * 20
    with pytest.warns(UserWarning) as record:
        assert (repeat_factors(lists, 0.001) == 1.0).all()
    (w,) = record
    text = str(w.message)
    assert "threshold 0.001 repeats no row" in text
    assert "rarest label is on 20 of 1,000 rows (frequency 0.02)" in text
    assert "a threshold above 0.02 would act" in text and "threshold='auto'" in text
    with pytest.warns(UserWarning, match="repeats no row"):
        RepeatFactorSampler(lists, 0.001, num_replicas=1, rank=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repeat_factors(lists, 0.05)  # acts: no warning
        repeat_factors(lists, 0.001, power=0.0)  # repeating switched off on purpose
        repeat_factors(lists, 0.5, max_repeat=1.0)


def test_auto_threshold_on_goemotions(goemotions_dir) -> None:
    from mlbalance.io import LabelSpec, read_labels

    spec = LabelSpec(
        sep=",",
        names_file=str(goemotions_dir / "labels.txt"),
        header_names=("text", "labels", "id"),
    )
    y = read_labels(goemotions_dir / "train.tsv", spec)
    with pytest.warns(UserWarning, match=r"rarest label is on 77 of 43,410 rows"):
        assert (repeat_factors(y, 0.001) == 1.0).all()
    assert expected_epoch_growth(y, 0.001) == 1.0
    t = auto_threshold(y)
    assert t == pytest.approx(0.1008, abs=5e-4)  # the figure in the docs
    exposure = repeat_exposure(y, "auto")
    assert exposure.epoch_growth == pytest.approx(1.5, rel=1e-9)
    grief = y.names.index("grief")
    assert exposure.label_factors[grief] == pytest.approx(7.54, abs=0.01)


def test_empty_label_matrix_is_an_error() -> None:
    empty = LabelMatrix.from_sparse(sp.csr_matrix((0, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="empty"):
        repeat_factors(empty, 0.5)
    with pytest.raises(ValueError, match="empty"):
        RepeatFactorSampler(empty, 0.5, num_replicas=1, rank=0)
    with pytest.raises(ValueError, match="empty"):
        ClassAwareSampler(empty, num_replicas=1, rank=0)


def test_stochastic_round_is_floor_or_ceil_and_unbiased() -> None:
    f = np.array([1.0, 1.25, 2.5, 3.9, 0.2, 7.0])
    rng = np.random.default_rng(0)
    draws = np.stack([stochastic_round(f, rng) for _ in range(4000)])
    assert ((draws == np.floor(f)) | (draws == np.ceil(f))).all()
    np.testing.assert_allclose(draws.mean(axis=0), f, atol=0.03)


# --- row weights and diagnostics -----------------------------------------------------------


def test_row_weights() -> None:
    y = _random_labels()
    np.testing.assert_array_equal(row_weights(y, 0.3), repeat_factors(y, 0.3))
    w = row_weights(y, method="class_aware")
    dense = y.to_dense()
    counts = dense.sum(axis=0)
    used = counts > 0
    want = (dense[:, used] / counts[used]).sum(axis=1) / used.sum()
    np.testing.assert_allclose(w, want)
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="threshold"):
        row_weights(y)
    with pytest.raises(ParameterError, match="Invalid method"):
        row_weights(y, 0.3, method="nope")
    with pytest.raises(ParameterError, match="or 'auto'"):
        row_weights(y)


def test_repeat_exposure_matches_brute_force() -> None:
    y = _random_labels(400, 10, seed=3)
    exp = repeat_exposure(y, 0.2, head_min=60, tail_max=30)
    dense = y.to_dense().astype(float)
    r = repeat_factors(y, 0.2)
    np.testing.assert_allclose(exp.after, dense.T @ r)
    np.testing.assert_array_equal(exp.before, dense.sum(axis=0))
    assert exp.expected_epoch_length == pytest.approx(r.sum())
    assert exp.rows_repeated == int((r > 1).sum())
    table = {b["bucket"]: b for b in exp.bucket_table()}
    assert sum(b["labels"] for b in table.values()) == 10
    assert sum(b["positives_after"] for b in table.values()) == pytest.approx(exp.after.sum())
    # repeat sampling only adds positives, most to the tail
    assert table["tail"]["gain"] >= table["head"]["gain"] >= 1.0
    d = exp.to_dict()
    json.dumps(d)  # JSON-ready
    assert len(d["labels"]) == 10 and d["expected_epoch_length"] == pytest.approx(r.sum())
    text = exp.summary()
    assert "expected epoch" in text and "tail" in text


def test_class_aware_exposure_equalises_labels() -> None:
    # three disjoint labels with 100, 10 and 1 rows
    lists = [["a"]] * 100 + [["b"]] * 10 + [["c"]]
    exp = class_aware_exposure(lists, num_samples=300)
    np.testing.assert_allclose(exp.after, [100.0, 100.0, 100.0])
    np.testing.assert_allclose(class_aware_row_probabilities(lists)[-1], 1 / 3)


def test_numpy_side_imports_without_torch() -> None:
    code = (
        "import sys, mlbalance, mlbalance.samplers.factors, mlbalance.samplers;"
        "from mlbalance.samplers import repeat_factors, repeat_exposure;"
        "repeat_factors([['a'], ['b']], 0.5);"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- sharding rules ---------------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [False, True])
def test_shard_matches_distributed_sampler(drop_last: bool) -> None:
    for n in range(1, 23):
        for world in range(1, 6):
            for rank in range(world):
                ref = DistributedSampler(
                    range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last
                )
                got = shard(np.arange(n), world, rank, drop_last)
                assert got.tolist() == list(ref), (n, world, rank)
                assert per_rank_length(n, world, drop_last) == len(ref)


@pytest.mark.parametrize("drop_last", [False, True])
def test_unit_factors_unshuffled_equal_distributed_sampler(drop_last: bool) -> None:
    for n in (5, 7, 8, 13):
        for world in (1, 2, 3, 4):
            for rank in range(world):
                ours = RepeatFactorSampler.from_factors(
                    np.ones(n), shuffle=False, num_replicas=world, rank=rank, drop_last=drop_last
                )
                ref = DistributedSampler(
                    range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last
                )
                assert list(ours) == list(ref) and len(ours) == len(ref)


# --- RepeatFactorSampler ---------------------------------------------------------------


def test_counts_converge_to_factors() -> None:
    y = _random_labels(60, 8, seed=1)
    s = RepeatFactorSampler(y, threshold=0.5, num_replicas=1, rank=0, seed=5)
    f = s.factors
    assert (f > 1).sum() > 10  # the test exercises fractional factors
    total = np.zeros(f.size)
    epochs = 1500
    for e in range(epochs):
        s.set_epoch(e)
        idx = s.epoch_indices()
        counts = np.bincount(idx, minlength=f.size)
        assert ((counts == np.floor(f)) | (counts == np.ceil(f))).all()
        assert len(s) == idx.size == counts.sum()
        total += counts
    np.testing.assert_allclose(total / epochs, f, atol=0.05)


def test_len_is_exact_before_iterating() -> None:
    s = RepeatFactorSampler.from_factors(np.linspace(0.5, 3.5, 101), seed=2, num_replicas=1, rank=0)
    for e in range(5):
        s.set_epoch(e)
        n = len(s)
        assert n == len(list(s))
    lens = set()
    for e in range(20):
        s.set_epoch(e)
        lens.add(len(s))
    assert len(lens) > 1  # the realised length varies with the epoch's rounding
    assert s.expected_epoch_length == pytest.approx(np.linspace(0.5, 3.5, 101).sum())


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_are_disjoint_and_cover_the_epoch(world: int, drop_last: bool) -> None:
    f = np.random.default_rng(0).uniform(0.5, 3.0, size=57)
    whole = RepeatFactorSampler.from_factors(f, seed=9, num_replicas=1, rank=0)
    whole.set_epoch(3)
    epoch = whole.epoch_indices()
    parts = []
    for r in range(world):
        s = RepeatFactorSampler.from_factors(
            f, seed=9, num_replicas=world, rank=r, drop_last=drop_last
        )
        s.set_epoch(3)
        parts.append(np.array(list(s)))
        assert len(s) == parts[-1].size
    assert len({p.size for p in parts}) == 1  # same number on every rank
    # interleaving the ranks rebuilds the padded / cut epoch, position by position
    merged = np.stack(parts, axis=1).reshape(-1)
    n = epoch.size
    if drop_last:
        assert merged.tolist() == epoch[: merged.size].tolist()
        assert n - merged.size < world
    else:
        assert merged[:n].tolist() == epoch.tolist()
        assert merged[n:].tolist() == epoch[: merged.size - n].tolist()
        assert merged.size - n < world


def test_deterministic_and_epoch_dependent() -> None:
    y = _random_labels(200, 10)
    a = RepeatFactorSampler(y, 0.3, seed=4, num_replicas=1, rank=0)
    b = RepeatFactorSampler(y, 0.3, seed=4, num_replicas=1, rank=0)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    c = RepeatFactorSampler(y, 0.3, seed=5, num_replicas=1, rank=0)
    assert list(a) != list(c)
    d = RepeatFactorSampler(y, 0.3, seed=4, shuffle=False, num_replicas=1, rank=0)
    assert list(d) == sorted(d)


def test_global_seeding_has_no_effect() -> None:
    y = _random_labels(200, 10)
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - global seeding must not matter
    random.seed(0)
    s = RepeatFactorSampler(y, 0.3, seed=1, num_replicas=1, rank=0)
    c = ClassAwareSampler(y, seed=1, num_replicas=1, rank=0)
    torch.manual_seed(999)  # should be ineffective
    np.random.seed(999)  # noqa: NPY002 - global seeding must not matter
    random.seed(999)
    first, first_c = list(s), list(c)
    torch.manual_seed(12345)
    np.random.seed(12345)  # noqa: NPY002 - global seeding must not matter
    assert list(s) == first and list(c) == first_c
    assert list(RepeatFactorSampler(y, 0.3, seed=1, num_replicas=1, rank=0)) == first


def test_same_order_in_a_separate_process() -> None:
    code = (
        "import json, numpy as np;"
        "from mlbalance.samplers import RepeatFactorSampler, ClassAwareSampler;"
        "f = np.linspace(0.5, 4.0, 40);"
        "s = RepeatFactorSampler.from_factors(f, seed=11, num_replicas=3, rank=1);"
        "s.set_epoch(7);"
        "lists = [['a']] * 30 + [['b']] * 5 + [['c'], ['a', 'c']];"
        "c = ClassAwareSampler(lists, seed=11, num_replicas=3, rank=1); c.set_epoch(7);"
        "print(json.dumps([list(s), list(c)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    there = json.loads(out.stdout)
    s = RepeatFactorSampler.from_factors(np.linspace(0.5, 4.0, 40), seed=11, num_replicas=3, rank=1)
    s.set_epoch(7)
    lists = [["a"]] * 30 + [["b"]] * 5 + [["c"], ["a", "c"]]
    c = ClassAwareSampler(lists, seed=11, num_replicas=3, rank=1)
    c.set_epoch(7)
    assert there == [list(s), list(c)]


def test_factor_inputs() -> None:
    f = np.array([1.0, 2.0, 0.0, 1.5])
    s1 = RepeatFactorSampler(f, num_replicas=1, rank=0)
    s2 = RepeatFactorSampler(torch.tensor(f), num_replicas=1, rank=0)
    s3 = RepeatFactorSampler.from_factors(f.tolist(), num_replicas=1, rank=0)
    assert list(s1) == list(s2) == list(s3)
    assert 2 not in list(s1)  # factor 0: never drawn
    with pytest.raises(ParameterError, match="threshold"):
        RepeatFactorSampler(f, 0.5, num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match="needs a threshold"):
        RepeatFactorSampler([["a"], ["b"]], num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match=r"row 1 has -1\.0"):
        RepeatFactorSampler.from_factors([1.0, -1.0], num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match="finite"):
        RepeatFactorSampler.from_factors([1.0, float("inf")], num_replicas=1, rank=0)


def test_bad_rank_and_epoch_messages() -> None:
    with pytest.raises(
        ValueError, match=r"^Invalid rank 3, rank should be in the interval \[0, 1\]$"
    ):
        RepeatFactorSampler.from_factors(np.ones(4), num_replicas=2, rank=3)
    with pytest.raises(ParameterError, match=r"rank must be an integer in \[0, inf\) or None"):
        ClassAwareSampler([["a"]], num_replicas=2, rank=-1)
    with pytest.raises(ParameterError, match=r"num_replicas must be an integer in \[1, inf\)"):
        RepeatFactorSampler.from_factors(np.ones(4), num_replicas=0, rank=0)
    s = RepeatFactorSampler.from_factors(np.ones(4), num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match="Invalid epoch -1"):
        s.set_epoch(-1)
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, inf\), got -3"):
        RepeatFactorSampler.from_factors(np.ones(4), seed=-3, num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match="shuffle must be True or False") as info:
        RepeatFactorSampler([["a"], ["b"]], 0.5, shuffle="yes", num_replicas=1, rank=0)
    assert info.value.params == ("shuffle",)


def test_repeat_sampler_with_the_derived_threshold() -> None:
    y = _random_labels(300, 10, seed=6)
    s = RepeatFactorSampler(y, "auto", seed=1, num_replicas=1, rank=0)
    assert s.threshold == auto_threshold(y)
    assert s.expected_epoch_growth == pytest.approx(AUTO_GROWTH, rel=1e-9)
    assert s.expected_epoch_length == pytest.approx(AUTO_GROWTH * 300, rel=1e-9)
    same = RepeatFactorSampler(y, s.threshold, seed=1, num_replicas=1, rank=0)
    assert list(s) == list(same)  # "auto" is only a way to choose the number
    assert "threshold=" in repr(s)
    assert RepeatFactorSampler.from_factors(np.ones(3)).threshold is None


def test_defaults_without_process_group() -> None:
    s = RepeatFactorSampler.from_factors(np.ones(10))
    assert (s.num_replicas, s.rank) == (1, 0)


def test_more_rows_than_multinomial_allows() -> None:
    n = 2**24 + 5  # torch.multinomial refuses more categories than 2^24
    f = np.ones(n)
    f[-1] = 3.0
    s = RepeatFactorSampler.from_factors(f, num_replicas=2, rank=1, shuffle=False)
    idx = s.epoch_indices()
    assert idx.size == len(s) == math.ceil((n + 2) / 2)
    # the epoch ends with the last row three times, then one index of padding (row 0)
    assert idx[-2] == n - 1 and idx[-1] == 0


def test_works_in_a_dataloader() -> None:
    data = torch.arange(30, dtype=torch.float32)
    s = RepeatFactorSampler.from_factors(np.full(30, 1.5), num_replicas=1, rank=0)
    loader = DataLoader(data, batch_size=8, sampler=s)
    got = torch.cat(list(loader))
    assert got.numel() == len(s)
    assert set(got.long().tolist()) <= set(range(30))


# --- ClassAwareSampler --------------------------------------------------------------------


def test_class_aware_draws_labels_uniformly() -> None:
    y = _random_labels(500, 10, seed=2)
    s = ClassAwareSampler(y, num_samples=40_000, seed=3, num_replicas=1, rank=0)
    labels, rows = s.epoch_labels()
    dense = y.to_dense()
    assert (dense[rows, labels] == 1).all()  # every drawn row carries its drawn label
    freq = np.bincount(labels, minlength=10) / labels.size
    np.testing.assert_allclose(freq, 0.1, atol=0.01)
    # row frequencies follow the class-aware marginal
    p = class_aware_row_probabilities(y)
    emp = np.bincount(rows, minlength=500) / rows.size
    assert np.abs(emp - p).sum() < 0.1
    assert list(s) == rows.tolist()


def test_class_aware_skips_rows_without_labels_and_distributes() -> None:
    lists = [["a"]] * 20 + [[]] * 10 + [["b"]]
    s = ClassAwareSampler(lists, num_replicas=1, rank=0)
    assert len(s) == 31
    drawn = set(s)
    assert not drawn & set(range(20, 30))
    assert 30 in drawn  # the single "b" row is drawn about half the time
    parts = []
    for r in range(3):
        c = ClassAwareSampler(lists, num_samples=31, num_replicas=3, rank=r, seed=2)
        parts.append(list(c))
        assert len(c) == 11
    whole = ClassAwareSampler(lists, num_samples=31, num_replicas=1, rank=0, seed=2)
    merged = np.stack(parts, axis=1).reshape(-1).tolist()
    assert merged[:31] == list(whole) and merged[31:] == list(whole)[:2]
    with pytest.raises(InputError, match="no row has a label"):
        ClassAwareSampler([[], []], num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match=r"num_samples must be an integer in \[1, inf\)"):
        ClassAwareSampler(lists, num_samples=0, num_replicas=1, rank=0)
    with pytest.raises(ParameterError, match="num_samples must be"):
        ClassAwareSampler(lists, num_samples=2.0, num_replicas=1, rank=0)


# --- mlbalance analyse --repeat-threshold ----------------------------------------------


def test_analyse_cli_repeat_threshold(tmp_path, capsys) -> None:
    from mlbalance.cli import main
    from mlbalance.io import LabelSpec, write_parquet

    lists = [["head"]] * 150 + [["mid", "head"]] * 30 + [["rare"]] * 5
    import pyarrow as pa

    table = pa.table({"labels": pa.array(lists, type=pa.list_(pa.string()))})
    path = tmp_path / "d.parquet"
    write_parquet(table, path, labels=["head", "mid", "rare"], spec=LabelSpec())
    out = tmp_path / "r.json"
    code = main(["analyse", str(path), "--repeat-threshold", "0.2", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "repeat-factor sampling" in text and "expected epoch" in text
    report = json.loads(out.read_text())["repeat_sampling"]
    want = repeat_exposure(lists, 0.2)
    assert report["expected_epoch_length"] == pytest.approx(want.expected_epoch_length)
    by_label = {r["label"]: r for r in report["labels"]}
    # "rare": 5 of 185 rows, factor sqrt(0.2 / (5 / 185)) on each of its 5 rows
    assert by_label["rare"]["positives_after"] == pytest.approx(5 * math.sqrt(0.2 * 185 / 5))
    assert by_label["head"]["positives_before"] == 180
    assert main(["analyse", str(path), "--repeat-threshold", "0"]) == 2
    err = capsys.readouterr().err
    assert "--repeat-threshold must be a number in (0, 1] or one of 'auto', got 0.0" in err
    assert main(["analyse", str(path), "--repeat-threshold", "0.2", "--repeat-power", "-1"]) == 2
    assert "--repeat-power must be a number in [0, inf), got -1.0" in capsys.readouterr().err
    code = main(["analyse", str(path), "--repeat-threshold", "auto", "--json", str(out)])
    assert code == 0
    assert "expected epoch" in capsys.readouterr().out
    report = json.loads(out.read_text())["repeat_sampling"]
    assert report["params"]["threshold"] == pytest.approx(auto_threshold(lists))
    # 1.5x is out of reach below the head label's frequency here (180 of 185 rows): t stops there
    assert report["params"]["threshold"] == pytest.approx(180 / 185)
    assert report["epoch_length_ratio"] == pytest.approx(expected_epoch_growth(lists, "auto"))


def test_bucket_shuffle_is_uniform(monkeypatch) -> None:
    """Rao-Sandelius shuffle, forced onto tiny arrays: all 120 orders of 5 equally likely."""
    from itertools import permutations

    from scipy.stats import chisquare

    import mlbalance.samplers._shuffle as sh

    monkeypatch.setattr(sh, "SMALL", 2)
    monkeypatch.setattr(sh, "BUCKET", 2)  # 2 buckets for 5 elements
    monkeypatch.setattr(sh, "CHUNK", 2)  # uniforms drawn bucket by bucket
    index = {p: i for i, p in enumerate(permutations(range(5)))}
    counts = np.zeros(120)
    rng = np.random.default_rng(0)
    for _ in range(24_000):
        counts[index[tuple(sh.shuffle(np.arange(5, dtype=np.int32), rng).tolist())]] += 1
    assert chisquare(counts).pvalue > 1e-3
    big = np.arange(300_000, dtype=np.int32)
    out = sh.shuffle(big.copy(), np.random.default_rng(1))
    assert np.array_equal(np.sort(out), big) and not np.array_equal(out, big)
