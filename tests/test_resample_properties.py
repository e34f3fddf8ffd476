"""Property tests: the resamplers' rules hold on random label matrices (hypothesis)."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbalance.labels import LabelMatrix
from mlbalance.measures import irlbl_of_counts as irlbl
from mlbalance.measures import mean_ir_of_counts as mean_ir
from mlbalance.resample import MLROS, MLRUS, REMEDIAL, TargetCounts


@st.composite
def label_matrices(draw):
    n = draw(st.integers(5, 120))
    k = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.7, size=k)
    y = (rng.random((n, k)) < p).astype(np.uint8)
    return LabelMatrix.from_dense(y)


def _accounted(res) -> None:
    rep = res.report()
    assert rep["kept"] + rep["dropped"] == rep["input_rows"]
    assert rep["kept"] + rep["extra_copies"] + rep["synthetic"] == rep["output_rows"]


def _sample_and_check_worse(resampler, y):
    """Sample; a warning says "made the imbalance worse" exactly when MeanIR or MaxIR rose."""
    from mlbalance import measures

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = resampler.sample(y)
    said = [w for w in seen if "made the imbalance worse" in str(w.message)]
    figures = {}
    for lm in (y, res.labels):
        if lm.nnz:
            ir = measures.irlbl(lm)
            figures.setdefault("mean_ir", []).append(measures.mean_ir(lm))
            figures.setdefault("max_ir", []).append(ir[np.isfinite(ir)].max())
    rose = {k for k, v in figures.items() if len(v) == 2 and v[1] > v[0] * (1 + 1e-12)}
    assert set(res.worse) == rose
    assert len(said) == (1 if rose else 0)
    return res


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(y=label_matrices(), p=st.floats(1, 100), seed=st.integers(0, 1000))
def test_mlros_rules(y, p, seed):
    r = MLROS(percentage=p, random_state=seed)
    res = _sample_and_check_worse(r, y)
    _accounted(res)
    clones = res.indices[y.n_rows :]
    assert len(clones) <= int(np.floor(y.n_rows * p / 100 + 1e-9))
    np.testing.assert_array_equal(res.indices[: y.n_rows], np.arange(y.n_rows))
    counts = y.counts()
    minority = np.isfinite(irlbl(counts)) & (irlbl(counts) > mean_ir(counts))
    dense = y.to_dense().astype(bool)
    assert all(dense[c, minority].any() for c in clones)  # every clone comes from a bag
    np.testing.assert_array_equal(res.labels.to_dense(), y.to_dense()[res.indices])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # checked above
        again = MLROS(percentage=p, random_state=seed).sample(y)
    np.testing.assert_array_equal(res.indices, again.indices)


@SETTINGS
@given(y=label_matrices(), p=st.floats(1, 99), seed=st.integers(0, 1000))
def test_mlrus_rules(y, p, seed):
    res = _sample_and_check_worse(MLRUS(percentage=p, random_state=seed), y)
    _accounted(res)
    assert np.all(np.diff(res.indices) > 0)  # kept rows, ascending, no repeats
    dropped = np.setdiff1d(np.arange(y.n_rows), res.indices)
    assert len(dropped) <= int(np.floor(y.n_rows * p / 100 + 1e-9))
    counts = y.counts()
    majority = np.isfinite(irlbl(counts)) & (irlbl(counts) < mean_ir(counts))
    dense = y.to_dense().astype(bool)
    assert all(dense[d, majority].any() for d in dropped)  # only rows of majority bags


@SETTINGS
@given(y=label_matrices())
def test_remedial_rules(y):
    res = _sample_and_check_worse(REMEDIAL(), y)
    _accounted(res)
    np.testing.assert_array_equal(res.labels.counts(), y.counts())  # labels moved, not lost
    n = y.n_rows
    orig = y.to_dense().astype(bool)
    out = res.labels.to_dense().astype(bool)
    for j, src in enumerate(res.indices[n:]):
        a, b = out[src], out[n + j]
        assert a.any() and b.any() and not (a & b).any()
        np.testing.assert_array_equal(a | b, orig[src])


@SETTINGS
@given(y=label_matrices(), lo=st.integers(1, 30), cap=st.integers(1, 5), seed=st.integers(0, 1000))
def test_target_rules(y, lo, cap, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = TargetCounts(min_rows=lo, max_copies=cap, random_state=seed)
        res = r.sample(y)
    _accounted(res)
    assert res.copies().max() <= 1 + cap
    before, after = y.counts(), res.labels.counts()
    for j, name in enumerate(y.names):
        if before[j] > 0:
            assert after[j] >= lo or name in r.shortfall_
            assert after[j] >= before[j]
