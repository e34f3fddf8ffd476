"""Per-label threshold tuning: hand-made cases, fallbacks, target recall, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from mlbalance.errors import InputError, ParameterError
from mlbalance.thresholds import ThresholdResult, apply_thresholds, tune_thresholds


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum((y == 1) & pred)
    den = y.sum() + pred.sum()
    return 2.0 * tp / den if den else 0.0


def brute_force_best_f1(y: np.ndarray, s: np.ndarray) -> float:
    """Best F1 of one label over every possible cut (reference, O(n^2))."""
    return max(f1(y, s >= t) for t in np.unique(s))


def brute_force_micro_f1(y: np.ndarray, s: np.ndarray) -> float:
    return brute_force_best_f1(y.ravel(), s.ravel())


def test_reference_f1_is_sklearns() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    pred = rng.random(50) < 0.4
    assert f1(y, pred) == pytest.approx(f1_score(y, pred))


def test_separable_label_gets_threshold_between_classes() -> None:
    y = np.array([[1], [1], [1], [0], [0], [0]])
    s = np.array([[0.9], [0.8], [0.7], [0.4], [0.2], [0.1]])
    res = tune_thresholds(y, s)
    assert res.thresholds[0] == pytest.approx(0.55)  # midway between 0.7 and 0.4
    assert res.fallback == {}
    assert apply_thresholds(s, res.thresholds)[:, 0].tolist() == [True] * 3 + [False] * 3


def test_separable_at_low_scores() -> None:
    # positives score below 0.5: the tuned threshold still separates them
    y = np.array([[1], [1], [1], [0], [0]])
    s = np.array([[0.2], [0.15], [0.12], [0.05], [0.01]])
    res = tune_thresholds(y, s)
    assert 0.05 < res.thresholds[0] < 0.12
    assert res.thresholds[0] == pytest.approx((0.12 + 0.05) / 2)


def test_label_without_positives_falls_back_to_global() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < 0.3).astype(int)
    y[:, 2] = 0
    s = np.clip(0.4 * y + rng.uniform(0, 0.6, y.shape), 0, 1)
    res = tune_thresholds(y, s)
    assert set(res.fallback) == {2}
    assert "no positives" in res.fallback[2]
    assert res.thresholds[2] == res.global_threshold
    assert 0.0 < res.global_threshold < 1.0
    # the global threshold is the micro-F1 optimum (a midpoint of the best cut)
    got = f1_score(y.ravel(), s.ravel() >= res.global_threshold)
    assert got == pytest.approx(brute_force_micro_f1(y, s))


def test_few_positives_fall_back_with_reason() -> None:
    rng = np.random.default_rng(1)
    y = np.zeros((100, 3), dtype=int)
    y[:40, 0] = 1
    y[:2, 1] = 1  # 2 positives < min_positives=3
    y[:30, 2] = 1
    s = np.clip(0.5 * y + rng.uniform(0, 0.5, y.shape), 0, 1)
    res = tune_thresholds(y, s, min_positives=3)
    assert set(res.fallback) == {1}
    assert "2 positive(s)" in res.fallback[1] and "global" in res.fallback[1]
    assert res.thresholds[1] == res.global_threshold
    # shrink: blend of the own and the global threshold, weight P / (P + k)
    own = tune_thresholds(y, s, min_positives=1).thresholds[1]
    shrunk = tune_thresholds(y, s, min_positives=3, fallback="shrink", shrink=3.0)
    w = 2 / (2 + 3.0)
    assert shrunk.thresholds[1] == pytest.approx(w * own + (1 - w) * res.global_threshold)
    assert "shrunk" in shrunk.fallback[1]
    assert shrunk.thresholds[0] == res.thresholds[0]


@pytest.mark.parametrize("seed", range(5))
def test_never_lowers_f1_relative_to_half(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_labels = 300, 8
    y = (rng.random((n, n_labels)) < rng.uniform(0.02, 0.5, n_labels)).astype(int)
    s = 1 / (1 + np.exp(-(1.5 * y - 2.0 + rng.normal(0, 1, y.shape))))
    s = np.round(s, 3)  # ties
    res = tune_thresholds(y, s, min_positives=3)
    for c in range(n_labels):
        if c in res.fallback:
            continue
        tuned = f1(y[:, c], s[:, c] >= res.thresholds[c])
        half = f1(y[:, c], s[:, c] >= 0.5)
        assert tuned >= half - 1e-12
        assert tuned == pytest.approx(brute_force_best_f1(y[:, c], s[:, c]))
        assert 0.0 < res.thresholds[c] < 1.0


@pytest.mark.parametrize("target", [0.5, 0.8, 1.0])
def test_target_recall_met_with_highest_threshold(target: float) -> None:
    rng = np.random.default_rng(7)
    y = (rng.random((400, 5)) < 0.2).astype(int)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, y.shape), 0, 1)
    res = tune_thresholds(y, s, mode="recall", target_recall=target)
    assert res.fallback == {}
    for c in range(5):
        pos = s[y[:, c] == 1, c]
        recall = (pos >= res.thresholds[c]).mean()
        assert recall >= target - 1e-12
        # the highest such threshold: the next higher positive score would miss the target
        higher = pos[pos >= res.thresholds[c]].min()
        assert (pos > higher).mean() < target


def test_sparse_input_and_ties() -> None:
    y = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0]]))
    s = np.array([[0.6, 0.3], [0.6, 0.3], [0.6, 0.9], [0.1, 0.9], [0.2, 0.9], [0.1, 0.1]])
    res = tune_thresholds(y, s, min_positives=1)
    # label 0: F1 best at predicting score >= 0.2 (3 tp, 1 fp): F1 = 6/7 vs >= 0.6: 2 tp, 1 fp
    assert res.thresholds[0] == pytest.approx((0.2 + 0.1) / 2)
    assert res.thresholds[1] == pytest.approx((0.9 + 0.3) / 2)


def test_all_rows_positive_predicts_all() -> None:
    y = np.ones((4, 1), dtype=int)
    s = np.array([[0.3], [0.2], [0.9], [0.05]])
    res = tune_thresholds(y, s)
    assert res.thresholds[0] == pytest.approx(0.025)
    assert apply_thresholds(s, res.thresholds).all()


def test_json_round_trip_and_reorder() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random((100, 3)) < 0.3).astype(int)
    y[:, 1] = 0
    s = rng.random((100, 3))
    res = tune_thresholds(y, s)
    doc = res.to_json(["a", "b", "c"])
    assert doc["fallback"] == {"b": res.fallback[1]}
    back = ThresholdResult.from_json(json.dumps(doc))
    np.testing.assert_array_equal(back.thresholds, res.thresholds)
    assert back.fallback == res.fallback and back.global_threshold == res.global_threshold
    np.testing.assert_array_equal(back.positives, res.positives)
    reordered = ThresholdResult.from_json(doc, names=["c", "b", "a"])
    np.testing.assert_array_equal(reordered.thresholds, res.thresholds[::-1])
    assert reordered.fallback == {1: res.fallback[1]}
    with pytest.raises(InputError, match="no threshold for label"):
        ThresholdResult.from_json(doc, names=["a", "z"])
    with pytest.raises(InputError, match="not a mlbalance-thresholds"):
        ThresholdResult.from_json({"labels": []})
    with pytest.raises(InputError, match="not valid JSON"):
        ThresholdResult.from_json("{")
    with pytest.raises(ParameterError, match="label names"):
        res.to_json(["a"])


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"mode": "precision"}, ParameterError, "mode"),
        ({"mode": "recall"}, ParameterError, "target_recall"),
        ({"mode": "recall", "target_recall": 1.5}, ParameterError, "target_recall"),
        ({"fallback": "zero"}, ParameterError, "fallback"),
        ({"min_positives": 0}, ParameterError, "min_positives"),
        ({"shrink": -1.0}, ParameterError, "shrink"),
        ({"scores": np.full((3, 3), 2.0)}, InputError, "probabilities"),
        ({"scores": np.full((2, 3), 0.5)}, InputError, "shape"),
    ],
)
def test_bad_input(kwargs: dict, err: type, match: str) -> None:
    args = {"y_true": np.eye(3, dtype=int), "scores": np.full((3, 3), 0.5)}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        tune_thresholds(**args)


def test_global_threshold_chunking_is_exact() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random((257, 6)) < 0.15).astype(int)
    s = np.round(rng.random((257, 6)) * 0.5 + 0.4 * y, 2)
    a = tune_thresholds(y, s, chunk_rows=7)
    b = tune_thresholds(y, s)
    assert a.global_threshold == b.global_threshold
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    got = f1_score(y.ravel(), s.ravel() >= b.global_threshold)
    assert got == pytest.approx(brute_force_micro_f1(y, s))


@pytest.mark.parametrize("layout", ["one-bucket", "wide-range", "float32"])
def test_exact_when_scores_crowd_one_bucket_or_span_many_octaves(layout: str) -> None:
    # the search counts scores in value buckets (16 per octave) and searches exactly only the
    # buckets that can hold a best cut: scores crowded into one bucket, or spread from 1e-30
    # to 1, must still give the exact per-label and micro-F1 optima
    rng = np.random.default_rng(12)
    y = (rng.random((300, 5)) < 0.2).astype(int)
    if layout == "one-bucket":
        s = 0.5 + 1e-7 * np.round(rng.random(y.shape) * 400 + 150 * y)
    elif layout == "wide-range":
        s = 10.0 ** -(30 * rng.random(y.shape) * (1 - 0.6 * y))
    else:
        s = np.clip(0.35 * y + rng.uniform(0, 0.65, y.shape), 0, 1).astype(np.float32)
    res = tune_thresholds(y, s, min_positives=1, max_rate=None)
    assert f1(y.ravel(), s.ravel() >= res.global_threshold) == pytest.approx(
        brute_force_micro_f1(y, s)
    )
    for c in range(5):
        assert f1(y[:, c], s[:, c] >= res.thresholds[c]) == pytest.approx(
            brute_force_best_f1(y[:, c], s[:, c])
        )


def test_recall_mode_global_threshold() -> None:
    rng = np.random.default_rng(13)
    y = (rng.random((200, 4)) < 0.2).astype(int)
    y[:, 3] = 0
    s = rng.random((200, 4))
    res = tune_thresholds(y, s, mode="recall", target_recall=0.75, max_rate=None)
    pos = s[y == 1]
    assert (pos >= res.global_threshold).mean() >= 0.75
    assert res.thresholds[3] == res.global_threshold
    # with the rate guard (default), the label with no positives may not fire on 3/4 of rows
    guarded = tune_thresholds(y, s, mode="recall", target_recall=0.75)
    assert guarded.thresholds[3] > guarded.global_threshold
    assert (s[:, 3] >= guarded.thresholds[3]).sum() <= 10
    assert "at most 10 validation rows" in guarded.fallback[3]


def test_unrankable_label_does_not_fire_on_every_row() -> None:
    """3 positives scored below almost every negative: the F1-best cut (F1 ~0.003) sits near
    0 and would fire on nearly every row; the guard caps it at 10x its positives."""
    rng = np.random.default_rng(0)
    n = 2000
    y = np.zeros((n, 2), dtype=int)
    s = rng.uniform(0.2, 0.9, size=(n, 2))
    y[:3, 0] = 1
    s[:3, 0] = [1e-5, 2e-5, 3e-5]  # the positives score lowest
    y[:100, 1] = 1
    s[:100, 1] = rng.uniform(0.91, 1.0, size=100)  # a well-ranked label
    free = tune_thresholds(y, s, max_rate=None)
    assert (s[:, 0] >= free.thresholds[0]).sum() > 1900  # the failure the guard prevents
    res = tune_thresholds(y, s)
    assert (s[:, 0] >= res.thresholds[0]).sum() <= 30
    assert "F1-best threshold fired on over 30" in res.fallback[0]
    assert res.thresholds[1] == free.thresholds[1]  # a label with skill is untouched
    assert 1 not in res.fallback
    with pytest.raises(ParameterError, match="max_rate must be a number in"):
        tune_thresholds(y, s, max_rate=0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=40),
    levels=st.integers(min_value=2, max_value=12),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_property_per_label_optimum_and_global_optimum(n: int, levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.4).astype(int)
    # many ties, scores in (0, 1]: a cut below an exact 0 has no threshold in (0, 1)
    s = rng.integers(1, levels + 1, size=(n, 3)) / levels
    # no firing-rate guard: the property is about the unconstrained F1 optimum (the guard,
    # tested on its own, may move a cut away from it)
    res = tune_thresholds(y, s, min_positives=1, max_rate=None)
    for c in range(3):
        if y[:, c].sum() == 0:
            assert c in res.fallback
            continue
        got = f1(y[:, c], s[:, c] >= res.thresholds[c])
        assert got == pytest.approx(brute_force_best_f1(y[:, c], s[:, c]))
        assert 0.0 < res.thresholds[c] < 1.0
    if y.sum():
        got = f1(y.ravel(), s.ravel() >= res.global_threshold)
        assert got == pytest.approx(brute_force_micro_f1(y, s))


def test_smoothing_pulls_every_tuned_threshold_toward_the_global() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random((400, 6)) < np.array([0.4, 0.2, 0.1, 0.05, 0.02, 0.0])).astype(int)
    s = np.clip(0.5 * y + 0.7 * rng.random((400, 6)), 0.0, 1.0)
    plain = tune_thresholds(y, s, max_rate=None)
    assert plain.smoothing == 0.0
    np.testing.assert_array_equal(
        tune_thresholds(y, s, max_rate=None, smoothing=0.0).thresholds, plain.thresholds
    )
    k = 20.0
    smooth = tune_thresholds(y, s, max_rate=None, smoothing=k)
    assert smooth.global_threshold == plain.global_threshold
    g = plain.global_threshold
    for c in range(6):
        p = int(plain.positives[c])
        if c in plain.fallback:  # fallback labels are untouched by smoothing
            assert smooth.thresholds[c] == plain.thresholds[c]
            continue
        want = (p * plain.thresholds[c] + k * g) / (p + k)
        assert smooth.thresholds[c] == pytest.approx(want, rel=1e-12)
        # a label with fewer positives moves a larger share of the way
        assert abs(smooth.thresholds[c] - g) <= abs(plain.thresholds[c] - g) + 1e-15
    huge = tune_thresholds(y, s, max_rate=None, smoothing=1e12)
    np.testing.assert_allclose(huge.thresholds, g, atol=1e-9)
    back = ThresholdResult.from_json(smooth.to_json(list("abcdef")))
    assert back.smoothing == k
    np.testing.assert_array_equal(back.thresholds, smooth.thresholds)
    with pytest.raises(ParameterError, match="smoothing"):
        tune_thresholds(y, s, smoothing=-1.0)


def test_rare_fallback_takes_the_median_cut_of_the_rarest_tuned_labels() -> None:
    rng = np.random.default_rng(9)
    n = 2000
    rates = np.array([0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.0005, 0.0])
    y = (rng.random((n, rates.size)) < rates).astype(int)
    y[:3, 7], y[3:, 7] = 1, 0  # 3 positives: tunable with min_positives 3
    y[:1, 6], y[1:, 6] = 1, 0  # 1 positive: falls back
    s = np.clip(0.3 * y + 0.6 * rng.random(y.shape) * (1 - rates), 0.0, 1.0)
    plain = tune_thresholds(y, s, max_rate=None)
    rare = tune_thresholds(y, s, max_rate=None, fallback="rare", rare_k=3)
    tuned = [c for c in range(rates.size) if c not in plain.fallback]
    assert set(plain.fallback) == {6, 8} and set(rare.fallback) == {6, 8}
    rarest = sorted(tuned, key=lambda c: (plain.positives[c], c))[:3]
    want = float(np.median(plain.thresholds[rarest]))
    for c in (6, 8):  # with one positive and with none
        assert rare.thresholds[c] == want
        assert "rarest tuned labels" in rare.fallback[c]
    np.testing.assert_array_equal(rare.thresholds[tuned], plain.thresholds[tuned])
    assert rare.strategy == "rare"
    with pytest.raises(ParameterError, match="rare_k"):
        tune_thresholds(y, s, fallback="rare", rare_k=0)
    # nothing tunable: the global threshold, said so
    only_rare = tune_thresholds(y[:, [6, 8]], s[:, [6, 8]], fallback="rare")
    assert np.all(only_rare.thresholds == only_rare.global_threshold)
    assert "no tuned label" in only_rare.fallback[0]
