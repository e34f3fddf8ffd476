"""ThresholdTuner: same thresholds as tune_thresholds and as the former search, reasons,
scikit-learn protocol, thresholds.json, cross-fitting, bagging, the guard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from mlbalance import LabelMatrix
from mlbalance.errors import InputError, ParameterError
from mlbalance.metrics import cut_curve
from mlbalance.thresholds import ThresholdResult, ThresholdTuner, _crossfit, tune_thresholds


# ------------------------------------------------------------------ the former search
def former_own_cut(col: np.ndarray, pos: np.ndarray, mode: str, target: float | None) -> float:
    """The per-label search as it was before the compiled one (cut_curve over every score)."""
    cuts, tp, n_pred, next_lower = cut_curve(col, pos)
    tp, n_pred = tp.astype(float), n_pred.astype(float)
    if mode == "f1":
        k = int(np.argmax(2.0 * tp / (pos.size + n_pred)))
    else:
        reached = np.flatnonzero(tp >= target * pos.size - 1e-9 * pos.size)
        k = int(reached[0]) if reached.size else tp.size - 1
    upper = float(cuts[k])
    t = upper / 2 if k + 1 == cuts.size else (upper + float(next_lower[k])) / 2
    return float(np.clip(t, 1e-12, 1 - 1e-12))


def former_global_cut(y: np.ndarray, s: np.ndarray) -> float:
    """Micro-F1 optimum over every distinct positive score, highest among ties, midpoint."""
    flat, truth = s.ravel(), y.ravel().astype(bool)
    cand = np.unique(flat[truth])
    f1 = np.array(
        [2.0 * (flat[truth] >= v).sum() / (truth.sum() + (flat >= v).sum()) for v in cand]
    )
    cut = float(cand[cand.size - 1 - int(np.argmax(f1[::-1]))])
    below = flat[flat < cut]
    t = cut / 2 if below.size == 0 else (cut + float(below.max())) / 2
    return float(np.clip(t, 1e-12, 1 - 1e-12))


def long_tail(n: int, n_labels: int, seed: int, dtype: type = np.float64) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    rates = 0.3 / np.arange(1, n_labels + 1) ** 1.2
    y = (rng.random((n, n_labels)) < rates).astype(np.uint8)
    z = 2.0 * y - 2.5 + rng.normal(0, 1.0, y.shape) + rng.normal(0, 0.7, n_labels)
    s = np.round(1 / (1 + np.exp(-z)), 3).astype(dtype)  # ties
    return y, s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("mode", "target"), [("f1", None), ("recall", 0.8)])
def test_search_equals_the_former_search(dtype: type, mode: str, target: float | None) -> None:
    y, s = long_tail(600, 12, seed=3, dtype=dtype)
    res = tune_thresholds(y, s, mode=mode, target_recall=target, min_positives=1, max_rate=None)
    for c in range(y.shape[1]):
        pos = s[y[:, c] == 1, c]
        if pos.size:
            assert res.thresholds[c] == former_own_cut(s[:, c], pos, mode, target)
    if mode == "f1":
        assert res.global_threshold == former_global_cut(y, s)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fallback": "shrink", "shrink": 5.0},
        {"fallback": "rare", "rare_k": 3},
        {"smoothing": 20.0},
        {"mode": "recall", "target_recall": 0.7},
        {"max_rate": None, "min_positives": 5},
    ],
)
def test_tuner_gives_tune_thresholds_results(params: dict) -> None:
    # the decision layer reproduces exactly what the trainer's tune_thresholds gives
    y, s = long_tail(800, 20, seed=1)
    tuner = ThresholdTuner(**params).fit(s, y)
    res = tune_thresholds(y, s, **params)
    np.testing.assert_array_equal(tuner.thresholds_, res.thresholds)
    assert tuner.global_threshold_ == res.global_threshold
    assert tuner.reasons_ == res.reasons
    np.testing.assert_array_equal(tuner.predict(s), (s >= res.thresholds).astype(np.uint8))


# ------------------------------------------------------------------ reasons
def test_reasons_say_too_few_positives_or_firing_cap() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = np.zeros((n, 3), dtype=np.uint8)
    s = rng.uniform(0.2, 0.9, size=(n, 3))
    y[:2, 0] = 1  # too few positives
    y[:20, 1] = 1  # 20 positives, scored below almost every negative: its F1-best cut fires
    s[:20, 1] = rng.uniform(0.0, 0.01, 20)  # on nearly every row, far over 10x its positives
    y[:100, 2] = 1
    s[:100, 2] = rng.uniform(0.91, 1.0, 100)
    tuner = ThresholdTuner().fit(s, y)
    reasons = tuner.reasons_
    assert reasons[2] is None
    assert "2 positive(s)" in reasons[0] and "too few" in reasons[0] and "global" in reasons[0]
    assert reasons[1].startswith("firing cap")
    assert "too few" not in reasons[1]
    fired = int(reasons[1].split("(")[1].split(" rows")[0])
    assert fired > 1900 and f"{fired / 20:.0f}x its 20 positives" in reasons[1]
    assert tuner.result_.kinds == {0: "few_positives", 1: "firing_cap"}
    line = tuner.result_.summary()
    assert "1 with too few positives" in line and "1 capped by the firing cap" in line
    assert "2 of 3 labels" in line


# ------------------------------------------------------------------ scikit-learn protocol
def test_get_set_params_and_validation() -> None:
    tuner = ThresholdTuner(smoothing=10.0, cv=3)
    params = tuner.get_params()
    assert params["smoothing"] == 10.0 and params["cv"] == 3 and params["mode"] == "f1"
    clone = ThresholdTuner(**params)
    assert clone.get_params() == params
    assert tuner.set_params(guard="label") is tuner and tuner.guard == "label"
    with pytest.raises(ParameterError, match="smoothing must be") as info:
        tuner.set_params(smoothing=-1.0)
    assert info.value.params == ("smoothing",)
    assert tuner.smoothing == 10.0  # a refused set_params changes nothing
    with pytest.raises(ParameterError, match="unknown parameter 'smooth'"):
        tuner.set_params(smooth=1.0)
    assert "smoothing=10.0" in repr(tuner) and "mode" not in repr(tuner)


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"mode": "recall"}, ("mode", "target_recall")),
        ({"average": "median"}, ("average", "cv")),
        ({"guard": "label"}, ("guard", "cv")),
        ({"guard": "label", "cv": 5, "mode": "recall", "target_recall": 0.5}, ("guard", "mode")),
    ],
)
def test_parameters_that_need_each_other(params: dict, names: tuple) -> None:
    with pytest.raises(ParameterError) as info:
        ThresholdTuner(**params)
    assert info.value.params == names


def test_predict_checks_and_not_fitted() -> None:
    y, s = long_tail(200, 4, seed=0)
    with pytest.raises(ParameterError, match="not fitted"):
        ThresholdTuner().predict(s)
    tuner = ThresholdTuner().fit(s, y)
    with pytest.raises(InputError, match="3 label columns but the tuner has 4"):
        tuner.predict(s[:, :3])
    with pytest.raises(InputError, match="logits=True"):
        ThresholdTuner().fit(s * 3 - 1, y)


# ------------------------------------------------------------------ thresholds.json
def test_json_round_trip_keeps_predictions_params_and_reasons() -> None:
    y, s = long_tail(500, 10, seed=2)
    labels = LabelMatrix.from_dense(y, [f"l{i}" for i in range(10)])
    tuner = ThresholdTuner(cv=3, guard="label", smoothing=5.0).fit(s, labels)
    doc = json.loads(json.dumps(tuner.to_json()))
    assert doc["labels"] == list(labels.names) and doc["version"] == 2
    assert doc["tuner"]["guard"] == "label" and doc["crossfit"]["folds"] == 3
    back = ThresholdTuner.from_json(doc)
    assert back.get_params() == tuner.get_params()
    np.testing.assert_array_equal(back.predict(s), tuner.predict(s))
    assert back.reasons_ == tuner.reasons_
    assert back.result_.kinds == tuner.result_.kinds
    reordered = ThresholdTuner.from_json(doc, names=["l3", "l0"])
    np.testing.assert_array_equal(reordered.thresholds_, tuner.thresholds_[[3, 0]])


def test_reads_a_version_1_file() -> None:
    # what `mlbalance train` wrote before version 2: no fallback_kind, tuner or crossfit
    doc = {
        "format": "mlbalance-thresholds",
        "version": 1,
        "rule": "score >= threshold",
        "mode": "f1",
        "target_recall": None,
        "min_positives": 3,
        "fallback_strategy": "shrink",
        "shrink": 3.0,
        "smoothing": 30.0,
        "global_threshold": 0.3,
        "labels": ["a", "b", "c"],
        "thresholds": [0.2, 0.3, 0.7],
        "val_positives": [10, 0, 50],
        "fallback": {
            "b": "no positives in validation: global threshold",
            "c": "its F1-best threshold fired on over 30 validation rows: raised to 0.7 so it "
            "fires on at most 30 validation rows",
        },
    }
    tuner = ThresholdTuner.from_json(json.dumps(doc))
    assert tuner.fallback == "shrink" and tuner.smoothing == 30.0
    assert tuner.result_.kinds == {1: "no_positives", 2: "firing_cap"}
    np.testing.assert_array_equal(tuner.predict(np.array([[0.25, 0.3, 0.69]])), [[1, 1, 0]])
    assert ThresholdResult.from_json(doc).thresholds.tolist() == [0.2, 0.3, 0.7]


def test_logits_scale() -> None:
    y, s = long_tail(400, 6, seed=4)
    s = np.clip(s, 1e-6, 1 - 1e-6)
    logits = np.log(s) - np.log1p(-s)
    on_probs = ThresholdTuner().fit(s, y)
    on_logits = ThresholdTuner(logits=True).fit(logits, y)
    np.testing.assert_array_equal(on_logits.predict(logits), on_probs.predict(s))
    doc = on_logits.to_json()
    assert doc["tuner"]["scale"] == "logit"
    np.testing.assert_array_equal(
        ThresholdTuner.from_json(doc).predict(logits), on_probs.predict(s)
    )


# ------------------------------------------------------------------ cross-fitting
def shared_cut_data(n: int, n_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every label has the same score distributions, so one cut is best for all of them and a
    per-label cut can only fit the noise of its few positives."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.02).astype(np.uint8)
    s = 1 / (1 + np.exp(-(1.8 * y - 2.4 + rng.normal(0, 1.0, y.shape))))
    return y, s


def micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = int((pred & (y == 1)).sum())
    return 2 * tp / (y.sum() + pred.sum())


def test_guard_falls_back_where_per_label_cuts_over_fit() -> None:
    y, s = shared_cut_data(600, 40, seed=0)  # ~12 positives per label
    y_test, s_test = shared_cut_data(20000, 40, seed=1)
    plain = ThresholdTuner().fit(s, y)
    guarded = ThresholdTuner(cv=5, guard="label").fit(s, y)
    oof = guarded.crossfit_["out_of_fold"]
    # out of fold, per-label cuts lose to the one cut on micro F1 (they fit the noise)
    assert oof["per_label"]["micro_f1"] < oof["global"]["micro_f1"] - 0.01
    kept = guarded.crossfit_["decisions"]["kept_own"]
    assert kept <= 10  # most labels fall back
    assert sum(k == "guard" for k in guarded.result_.kinds.values()) >= 30
    reverted = next(c for c, k in guarded.result_.kinds.items() if k == "guard")
    assert guarded.thresholds_[reverted] == guarded.global_threshold_
    assert "out of fold" in guarded.reasons_[reverted]
    test = {
        name: micro_f1(y_test, s_test >= t.thresholds_)
        for name, t in [("plain", plain), ("guarded", guarded)]
    }
    best_one_cut = micro_f1(y_test, s_test >= plain.global_threshold_)
    assert test["guarded"] > test["plain"] + 0.01
    assert test["guarded"] >= best_one_cut - 0.005 - 0.005


def test_guard_keeps_per_label_cuts_that_earn_their_place() -> None:
    # each label's scores are shifted by its own offset: one cut cannot fit them all
    rng = np.random.default_rng(3)
    n, n_labels = 3000, 10
    y = (rng.random((n, n_labels)) < 0.1).astype(np.uint8)
    shift = np.linspace(-2.5, 1.5, n_labels)
    s = 1 / (1 + np.exp(-(3 * y - 1.5 + shift + rng.normal(0, 0.6, y.shape))))
    guarded = ThresholdTuner(cv=5, guard="label", micro_tolerance=None).fit(s, y)
    assert guarded.crossfit_["decisions"]["kept_own"] >= 8
    plain = ThresholdTuner().fit(s, y)
    kept = [c for c in range(n_labels) if guarded.reasons_[c] is None]
    np.testing.assert_array_equal(guarded.thresholds_[kept], plain.thresholds_[kept])


def test_guard_all_is_all_or_nothing() -> None:
    y, s = shared_cut_data(600, 40, seed=0)
    tuner = ThresholdTuner(cv=5, guard="all").fit(s, y)
    assert tuner.crossfit_["decisions"]["kept_own"] == 0
    np.testing.assert_array_equal(tuner.thresholds_, tuner.global_threshold_)


def test_out_of_fold_counts_are_those_of_the_fold_tuners() -> None:
    y, s = long_tail(500, 8, seed=5)
    tuner = ThresholdTuner(cv=4, random_state=7).fit(s, y)
    folds = _crossfit.fold_ids(sp.csr_matrix(y), 4, 7)
    tp = pred = 0
    for f in range(4):
        fit = ThresholdTuner().fit(s[folds != f], y[folds != f])
        hits = s[folds == f] >= fit.thresholds_
        tp += int((hits & (y[folds == f] == 1)).sum())
        pred += int(hits.sum())
    want = 2 * tp / (y.sum() + pred)
    assert tuner.crossfit_["out_of_fold"]["per_label"]["micro_f1"] == pytest.approx(want)
    # cv alone (average="refit", guard="off") reports but does not change the thresholds
    np.testing.assert_array_equal(tuner.thresholds_, ThresholdTuner().fit(s, y).thresholds_)


def test_median_of_fold_cuts() -> None:
    y, s = long_tail(900, 6, seed=6)
    tuner = ThresholdTuner(cv=3, average="median", max_rate=None, random_state=1).fit(s, y)
    folds = _crossfit.fold_ids(sp.csr_matrix(y), 3, 1)
    fold_cuts = np.vstack(
        [
            tune_thresholds(y[folds != f], s[folds != f], min_positives=1, max_rate=None).thresholds
            for f in range(3)
        ]
    )
    tuned = [c for c in range(6) if tuner.reasons_[c] is None]
    assert tuned
    np.testing.assert_allclose(tuner.thresholds_[tuned], np.median(fold_cuts, axis=0)[tuned])


def test_crossfit_is_deterministic_and_too_few_rows_is_one_line() -> None:
    y, s = long_tail(300, 5, seed=8)
    a = ThresholdTuner(cv=3, guard="label", random_state=3).fit(s, y)
    b = ThresholdTuner(cv=3, guard="label", random_state=3).fit(s, y)
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    with pytest.raises(InputError, match="too few for cv=5"):
        ThresholdTuner(cv=5).fit(s[:3], y[:3])


# ------------------------------------------------------------------ the group guard
def rare_shift_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """30 labels with 0.6% positives whose scores all run low (a model that saw few of them):
    the global cut, set by 5 frequent labels, misses them; each has too few positives for a
    test of its own, but as a group their own cuts are clearly better."""
    rng = np.random.default_rng(seed)
    rates = np.r_[np.full(5, 0.3), np.full(30, 0.006)]
    y = (rng.random((n, rates.size)) < rates).astype(np.uint8)
    offset = np.r_[np.zeros(5), np.full(30, -1.5)]
    s = 1 / (1 + np.exp(-(3.0 * y - 1.5 + offset + rng.normal(0, 0.8, y.shape))))
    return y, s


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = (pred & (y == 1)).sum(axis=0)
    den = y.sum(axis=0) + pred.sum(axis=0)
    return float(np.mean(np.divide(2 * tp, den, out=np.zeros(den.size), where=den > 0)))


def test_frequency_groups() -> None:
    got = _crossfit.frequency_groups(np.array([0, 1, 2, 3, 4, 7, 8, 100]))
    assert got.tolist() == [0, 1, 2, 2, 3, 3, 4, 7]


def test_group_guard_keeps_the_cuts_a_whole_group_needs() -> None:
    y, s = rare_shift_data(1000, seed=0)  # ~6 positives per rare label
    y_test, s_test = rare_shift_data(20000, seed=1)
    group = ThresholdTuner(cv=5, guard="group").fit(s, y)
    label = ThresholdTuner(cv=5, guard="label").fit(s, y)
    one_cut = ThresholdTuner(per_label=False).fit(s, y)
    kept_rare = sum(group.reasons_[c] is None for c in range(5, 35))
    assert kept_rare >= 25
    assert sum(label.reasons_[c] is None for c in range(5, 35)) < kept_rare
    scores = {
        name: macro_f1(y_test, s_test >= t.thresholds_)
        for name, t in [("group", group), ("label", label), ("global", one_cut)]
    }
    assert scores["group"] > scores["global"] + 0.05
    assert scores["group"] > scores["label"]
    decisions = group.crossfit_["decisions"]
    assert decisions["decision"].startswith("group:")
    assert decisions["kept_own"] == sum(r is None for r in group.reasons_)


def test_group_guard_reverts_groups_that_fit_noise() -> None:
    y, s = shared_cut_data(600, 40, seed=0)
    y_test, s_test = shared_cut_data(20000, 40, seed=1)
    tuner = ThresholdTuner(cv=5, guard="group").fit(s, y)
    assert tuner.crossfit_["decisions"]["kept_own"] <= 5
    plain = ThresholdTuner().fit(s, y)
    got = micro_f1(y_test, s_test >= tuner.thresholds_)
    assert got > micro_f1(y_test, s_test >= plain.thresholds_) + 0.01
    assert got >= micro_f1(y_test, s_test >= plain.global_threshold_) - 0.005


def test_folds_tune_labels_just_tunable_on_all_rows() -> None:
    # 3 positives (min_positives=3): the folds see 2-3 of them and must still tune the label,
    # or the out-of-fold estimate could never credit its own cut
    rng = np.random.default_rng(2)
    n = 500
    y = np.zeros((n, 2), dtype=np.uint8)
    y[:150, 0] = 1
    y[150:153, 1] = 1
    s = np.c_[rng.uniform(0.0, 0.3, n), rng.uniform(0.0, 0.04, n)]
    s[:150, 0] = rng.uniform(0.5, 1.0, 150)
    s[150:153, 1] = [0.05, 0.06, 0.07]  # separable, far below the global cut
    tuner = ThresholdTuner(cv=3, guard="label", confidence=0.5).fit(s, y)
    assert tuner.global_threshold_ > 0.07
    assert tuner.reasons_[1] is None
    assert tuner.thresholds_[1] < 0.05


# ------------------------------------------------------------------ temperature scaling
def test_temperature_recovers_a_known_scale() -> None:
    from mlbalance.thresholds._calibration import fit_temperature

    rng = np.random.default_rng(0)
    n = 20000
    true_p = 1 / (1 + np.exp(-rng.normal(-1, 2, (n, 2))))
    y = (rng.random((n, 2)) < true_p).astype(np.uint8)
    a = np.array([2.0, 0.5])
    z = (np.log(true_p) - np.log1p(-true_p)) / a  # so sigmoid(a z) = true_p
    cal = fit_temperature(sp.csr_matrix(y), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(cal.a, a, rtol=0.05)


def test_temperature_keeps_own_cuts_and_moves_the_global_one() -> None:
    y, s = long_tail(1500, 8, seed=9)
    plain = ThresholdTuner(max_rate=None).fit(s, y)
    scaled = ThresholdTuner(max_rate=None, calibration="temperature").fit(s, y)
    own = [c for c in range(8) if plain.reasons_[c] is None]
    np.testing.assert_array_equal(scaled.thresholds_[own], plain.thresholds_[own])
    one_cut = ThresholdTuner(calibration="temperature", per_label=False).fit(s, y)
    assert np.unique(one_cut.thresholds_).size > 1  # one scaled cut, a raw cut per label
    assert len(scaled.to_json()["calibration"]["temperature"]) == 8


# ------------------------------------------------------------------ compare_modes
def test_compare_modes_scores_each_mode_on_test() -> None:
    from mlbalance.metrics import multilabel_metrics
    from mlbalance.thresholds.compare import compare_modes, format_table

    y, s = long_tail(600, 6, seed=10)
    y_test, s_test = long_tail(600, 6, seed=11)
    modes = {"0.5": None, "per-label": {}, "guard": {"cv": 3, "guard": "group"}}
    table = compare_modes(s, y, s_test, y_test, modes=modes, train_counts=y.sum(axis=0))
    assert list(table) == list(modes)
    assert table["0.5"]["delta_micro_f1"] == 0.0
    want = multilabel_metrics(y_test, s_test, ThresholdTuner().fit(s, y).thresholds_)
    assert table["per-label"]["macro_f1"] == pytest.approx(want["macro_f1"])
    assert "decisions" in table["guard"]["crossfit"]
    assert format_table(table).count("\n") == len(modes) + 1


# ------------------------------------------------------------------ property
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=60),
    levels=st.integers(min_value=1, max_value=40),
    float32=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_property_same_cuts_as_the_former_search(
    n: int, levels: int, float32: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.3).astype(np.uint8)
    # ties, exact zeros and ones, and values spread over many octaves
    s = np.where(rng.random((n, 3)) < 0.5, rng.integers(0, levels + 1, (n, 3)) / max(levels, 1),
                 10.0 ** -rng.uniform(0, 12, (n, 3)))  # fmt: skip
    s = s.astype(np.float32 if float32 else np.float64)
    res = tune_thresholds(y, s, min_positives=1, max_rate=None)
    for c in range(3):
        pos = s[y[:, c] == 1, c]
        if pos.size:
            assert res.thresholds[c] == former_own_cut(s[:, c], pos, "f1", None)
    if y.any():
        assert res.global_threshold == former_global_cut(y, s)
    # cross-fitting and the guards run on whatever the data is
    if n >= 6:
        ThresholdTuner(cv=3, guard=("group", "label", "all")[seed % 3]).fit(s, y)
