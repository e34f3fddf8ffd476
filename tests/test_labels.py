"""LabelMatrix and as_label_matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlbalance import InputError, LabelMatrix, as_label_matrix


def test_from_lists_vocabulary_sorted_and_duplicates_count_once():
    y = as_label_matrix([["b", "a", "a"], [], ["c"]])
    assert y.names == ("a", "b", "c")
    assert y.to_lists() == [["a", "b"], [], ["c"]]
    assert y.counts().tolist() == [1, 1, 1]
    assert y.row_sizes().tolist() == [2, 0, 1]


def test_int_labels_sorted_numerically():
    y = as_label_matrix([[10, 2], [1]])
    assert y.names == ("1", "2", "10")


def test_every_input_kind_gives_the_same_matrix():
    dense = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]])
    names = ["x", "y", "z"]
    ref = as_label_matrix(dense, names)
    variants = [
        as_label_matrix(sp.csc_matrix(dense), names),
        as_label_matrix(pd.DataFrame(dense, columns=names)),
        as_label_matrix([["x", "z"], [], ["y", "z"]], names),
        as_label_matrix(dense.tolist(), names=None).with_names(["0", "1", "2"]),
        ref,
    ]
    for v in variants[:4]:
        assert (v.matrix != ref.matrix).nnz == 0
    assert variants[3].names == ("0", "1", "2")


def test_with_names_reorders_and_extends():
    y = as_label_matrix([["a"], ["b"]])
    z = y.with_names(["b", "c", "a"])
    assert z.names == ("b", "c", "a")
    assert z.to_lists() == [["a"], ["b"]]
    assert z.counts().tolist() == [1, 0, 1]
    with pytest.raises(InputError, match="not in the target vocabulary"):
        y.with_names(["a"])


def test_take_repeats_rows():
    y = as_label_matrix([["a"], ["b"], []])
    assert y.take([1, 1, 0]).to_lists() == [["b"], ["b"], ["a"]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([[0, 2]]), "must be 0/1"),
        (np.array([[0.5, 1.0]]), "must be 0/1"),
        (np.array([[np.nan, 1.0]]), "NaN"),
        (np.array([1, 0, 1]), "2-D"),
        ([], "empty"),
        ([1, 2, 3], "label lists"),
        ("abc", "cannot use str"),
    ],
)
def test_bad_inputs_raise_clear_errors(value, message):
    with pytest.raises(InputError, match=message):
        as_label_matrix(value)


def test_names_must_match_columns_and_be_unique():
    with pytest.raises(InputError, match="3 columns but 2 names"):
        LabelMatrix.from_dense(np.eye(3), ["a", "b"])
    with pytest.raises(InputError, match="duplicate label name 'a'"):
        LabelMatrix.from_dense(np.eye(2), ["a", "a"])
