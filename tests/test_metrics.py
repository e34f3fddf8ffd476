"""Metrics against scikit-learn on random data, and the conventions for absent labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from mlbalance.buckets import label_buckets
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.metrics import average_precision, format_metrics, multilabel_metrics


def random_case(seed: int, n: int = 300, n_labels: int = 12, absent: int = 2):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.01, 0.4, n_labels)
    y = (rng.random((n, n_labels)) < rates).astype(np.uint8)
    y[:, :absent] = 0  # labels with no positives
    noise = rng.normal(0, 1, (n, n_labels))
    scores = 1 / (1 + np.exp(-(2.0 * y - 1.5 + noise)))
    scores = np.round(scores, 2)  # ties, as real float32 scores have
    return y, scores, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_against_sklearn(seed: int, zero_division: float) -> None:
    y, scores, rng = random_case(seed)
    thr = rng.uniform(0.2, 0.8, y.shape[1])
    pred = (scores >= thr).astype(int)
    pred[:, 5] = 0  # a label never predicted
    thr[5] = 2.0
    m = multilabel_metrics(sp.csr_matrix(y), scores, thr, zero_division=zero_division)
    inc = multilabel_metrics(y, scores, thr, absent="include", zero_division=zero_division)
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(
            y, pred, average=avg, zero_division=zero_division
        )
        assert inc[f"{avg}_precision"] == pytest.approx(p, abs=1e-12)
        assert inc[f"{avg}_recall"] == pytest.approx(r, abs=1e-12)
        assert inc[f"{avg}_f1"] == pytest.approx(f, abs=1e-12)
    present = y.sum(axis=0) > 0
    p, r, f, _ = precision_recall_fscore_support(
        y[:, present], pred[:, present], average="macro", zero_division=zero_division
    )
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f))
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="micro", zero_division=0)
    assert (m["micro_precision"], m["micro_recall"], m["micro_f1"]) == pytest.approx((p, r, f))
    aps = [average_precision_score(y[:, c], scores[:, c]) for c in np.flatnonzero(present)]
    assert m["macro_map"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert m["n_labels_without_positives"] == 2
    assert m["labels_without_positives"] == ["0", "1"]
    assert m["n_labels_evaluated"] == y.shape[1] - 2
    assert "5" in m["never_predicted"]
    assert m["n_never_predicted"] == int((pred.sum(axis=0) == 0).sum())
    # per-label table agrees with sklearn per label
    p, r, f, s = precision_recall_fscore_support(y, pred, average=None, zero_division=zero_division)
    table = m["per_label"]
    for c in range(y.shape[1]):
        assert table[c]["support"] == s[c]
        assert table[c]["f1"] == pytest.approx(f[c])
        assert table[c]["precision"] == pytest.approx(p[c])
        if present[c]:
            assert table[c]["recall"] == pytest.approx(r[c])
            assert table[c]["ap"] == pytest.approx(average_precision_score(y[:, c], scores[:, c]))
        else:
            assert table[c]["recall"] is None and table[c]["ap"] is None
    json.dumps(m)  # serialisable


def test_average_precision_with_ties() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        s = rng.integers(0, 5, 40) / 4.0
        y = rng.random(40) < 0.3
        y[0] = True
        assert average_precision(s, y) == pytest.approx(average_precision_score(y, s))


def test_scalar_threshold_and_label_matrix_names() -> None:
    y, scores, _ = random_case(3, n_labels=4, absent=0)
    lm = LabelMatrix.from_dense(y, ["a", "b", "c", "d"])
    m = multilabel_metrics(lm, scores, 0.5)
    assert [row["label"] for row in m["per_label"]] == ["a", "b", "c", "d"]
    pred = (scores >= 0.5).astype(int)
    _, _, f, _ = precision_recall_fscore_support(y, pred, average="micro")
    assert m["micro_f1"] == pytest.approx(f)
    # threshold rule is >=: a score equal to the threshold is predicted
    eq = multilabel_metrics(np.array([[1, 0]]), np.array([[0.5, 0.5]]), 0.5)
    assert eq["micro_precision"] == 0.5 and eq["micro_recall"] == 1.0


def test_buckets_from_train_counts() -> None:
    y, scores, _ = random_case(4, n_labels=6, absent=1)
    train_counts = np.array([5, 10, 50, 60, 500, 1000])  # tail tail medium medium head head
    m = multilabel_metrics(y, scores, 0.5, train_counts=train_counts)
    buckets = label_buckets(train_counts)
    recall = np.array(
        [row["recall"] if row["recall"] is not None else np.nan for row in m["per_label"]]
    )
    for b in ("head", "medium", "tail"):
        sel = (buckets == b) & ~np.isnan(recall)
        assert m[f"macro_recall_{b}"] == pytest.approx(recall[sel].mean())
    assert m["buckets"]["tail"] == {
        "labels": 2,
        "evaluated": 1,  # label 0 has no positives in y_true
        "macro_recall": m["macro_recall_tail"],
    }
    assert m["per_label"][4]["bucket"] == "head"
    # a bucket with no evaluated label is None, not NaN
    m2 = multilabel_metrics(y, scores, 0.5, train_counts=np.full(6, 1000))
    assert m2["macro_recall_tail"] is None and m2["macro_recall_head"] is not None
    assert "by train bucket" in format_metrics(m)


def test_perfect_and_empty_predictions() -> None:
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    perfect = multilabel_metrics(y, y.astype(float), 0.5)
    assert perfect["micro_f1"] == 1.0 and perfect["macro_f1"] == 1.0
    assert perfect["macro_map"] == 1.0 and perfect["never_predicted"] == []
    none = multilabel_metrics(y, np.zeros((3, 3)), 0.5)
    assert none["micro_f1"] == 0.0 and none["macro_recall"] == 0.0
    assert none["n_never_predicted"] == 3


def test_sparse_and_list_inputs_agree() -> None:
    y, scores, _ = random_case(6, n=50, n_labels=5, absent=0)
    a = multilabel_metrics(y, scores, per_label=False)
    b = multilabel_metrics(sp.csr_matrix(y), scores, per_label=False)
    c = multilabel_metrics(sp.csc_matrix(y), scores, per_label=False)
    assert a == b == c
    assert "per_label" not in a


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"scores": np.zeros((3, 2))}, InputError, "shape"),
        ({"scores": np.array([[0.1, np.nan, 0.2]] * 3)}, InputError, "row 0, label column 1"),
        ({"thresholds": [0.5, 0.5]}, ParameterError, "one per label"),
        ({"train_counts": [1, 2]}, ParameterError, "train_counts"),
        ({"label_names": ["a"]}, ParameterError, "label_names has 1 names"),
        ({"absent": "drop"}, ParameterError, "absent"),
    ],
)
def test_bad_input(kwargs: dict, err: type, match: str) -> None:
    args = {"y_true": np.eye(3, dtype=int), "scores": np.full((3, 3), 0.5)}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        multilabel_metrics(**args)


def test_non_binary_truth_rejected() -> None:
    with pytest.raises(InputError, match="0/1"):
        multilabel_metrics(np.array([[2, 0]]), np.array([[0.1, 0.2]]))


def test_dense_fast_path_matches_label_matrix() -> None:
    from mlbalance.labels import as_label_matrix
    from mlbalance.metrics import label_csr

    rng = np.random.default_rng(9)
    for dtype in (np.uint8, np.int64, bool):
        y = (rng.random((40, 7)) < 0.3).astype(dtype)
        fast = label_csr(y)
        ref = as_label_matrix(y).matrix
        assert fast.dtype == np.uint8 and fast.has_sorted_indices
        np.testing.assert_array_equal(fast.indptr, ref.indptr)
        np.testing.assert_array_equal(fast.indices, ref.indices)
    with pytest.raises(InputError, match="row 1, column 0 is -1"):
        label_csr(np.array([[0, 1], [-1, 0]]))


def test_non_finite_score_located_across_blocks() -> None:
    from mlbalance.metrics import check_scores

    s = np.zeros((5000, 1000), dtype=np.float32)
    s[4321, 7] = np.inf
    with pytest.raises(InputError, match="row 4321, label column 7 is inf"):
        check_scores(s)
