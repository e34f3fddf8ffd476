"""MULAN ARFF + XML: dense and sparse rows, labels by name, train+test, clear errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from conftest import MULAN_SETS
from mlbalance import InputError
from mlbalance.io.arff import find_xml, read_arff, read_mulan_xml

XML = """<?xml version="1.0" encoding="utf-8"?>
<labels xmlns="http://mulan.sourceforge.net/labels">
<label name="l2"></label>
<label name="l 1"></label>
</labels>
"""

HEADER = """% a comment
@relation toy
@attribute f1 numeric
@attribute 'l 1' {0,1}
@attribute colour {red, green, 'dark blue'}
@attribute l2 {0,1}
@attribute f2 real
@data
"""
DENSE_ROWS = ["1.5,1,red,0,2", "?,0,'dark blue',1,-1", "0,0,green,0,0", "3,1,red,1,0.25"]
SPARSE_ROWS = [
    "{0 1.5,1 1,4 2}",
    "{0 ?,2 'dark blue',3 1,4 -1}",
    "{2 green}",
    "{0 3,1 1,3 1,4 0.25}",
]


def _write(tmp_path, rows, name="toy", xml=XML, header=HEADER):
    arff = tmp_path / f"{name}.arff"
    arff.write_text(header + "\n".join(rows) + "\n")
    if xml is not None:
        (tmp_path / f"{name}.xml").write_text(xml)
    return arff


def _check_toy(features, labels):
    assert labels.names == ("l 1", "l2")  # ARFF order, not the XML's
    assert labels.to_dense().tolist() == [[1, 0], [0, 1], [0, 0], [1, 1]]
    assert list(features.columns) == ["f1", "colour", "f2"]
    np.testing.assert_array_equal(features["f1"].to_numpy(), [1.5, np.nan, 0, 3])
    np.testing.assert_array_equal(features["f2"].to_numpy(), [2, -1, 0, 0.25])
    assert list(features["colour"].cat.categories) == ["red", "green", "dark blue"]
    assert features["colour"].tolist() == ["red", "dark blue", "green", "red"]


def test_dense(tmp_path):
    _check_toy(*read_arff(_write(tmp_path, DENSE_ROWS)))


def test_sparse_equals_dense(tmp_path):
    # omitted sparse values are 0 (numeric) or the first declared value (nominal): red
    rows = list(SPARSE_ROWS)
    rows[2] = "{2 green}"
    features, labels = read_arff(_write(tmp_path, rows))
    _check_toy(features, labels)


def test_mixed_dense_and_sparse_rows(tmp_path):
    rows = [DENSE_ROWS[0], SPARSE_ROWS[1], DENSE_ROWS[2], SPARSE_ROWS[3]]
    _check_toy(*read_arff(_write(tmp_path, rows)))


def test_explicit_xml_path_and_train_test_concatenation(tmp_path):
    (tmp_path / "labels.xml").write_text(XML)
    _write(tmp_path, DENSE_ROWS[:2], name="toy-train", xml=None)
    _write(tmp_path, DENSE_ROWS[2:], name="toy-test", xml=None)
    f, y = read_arff(tmp_path / "toy.arff", tmp_path / "labels.xml")  # toy.arff does not exist
    _check_toy(f, y)
    f2, y2 = read_arff(
        [tmp_path / "toy-train.arff", tmp_path / "toy-test.arff"], tmp_path / "labels.xml"
    )
    assert (y2.matrix != y.matrix).nnz == 0
    pd.testing.assert_frame_equal(f2, f)


def test_meka_header_without_xml(tmp_path):
    header = "@relation 'toy: -C 2'\n@attribute a {0,1}\n@attribute b {0,1}\n@attribute x numeric\n@data\n"
    arff = _write(tmp_path, ["1,0,3", "1,1,4"], xml=None, header=header)
    f, y = read_arff(arff)
    assert y.names == ("a", "b") and y.counts().tolist() == [2, 1]
    assert f.columns.tolist() == ["x"]
    header = header.replace("-C 2", "-C -1")
    f, y = read_arff(_write(tmp_path, ["1,0,1", "1,1,0"], xml=None, header=header))
    assert y.names == ("x",) and f.columns.tolist() == ["a", "b"]


def test_nested_xml_labels(tmp_path):
    xml = (
        '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="l2">'
        '<label name="l 1"/></label></labels>'
    )
    (tmp_path / "h.xml").write_text(xml)
    assert read_mulan_xml(tmp_path / "h.xml") == ["l2", "l 1"]


@pytest.mark.parametrize(
    ("rows", "xml", "header", "match"),
    [
        (DENSE_ROWS, None, HEADER, r"toy\.arff: no label attributes"),
        (DENSE_ROWS, XML.replace('"l2"', '"l3"'), HEADER, r"toy\.xml: names 1 label.*'l3'"),
        (["1,1,red,0"], XML, HEADER, r"toy\.arff: line 9: 4 values, expected 5"),
        (["1,2,red,0,1"], XML, HEADER, r"line 9: label 'l 1' has value '2'"),
        (["x,1,red,0,1"], XML, HEADER, r"line 9: attribute 'f1': 'x' is not a number"),
        (["1,1,purple,0,1"], XML, HEADER, r"line 9: attribute 'colour': 'purple'"),
        (["{0 1, 9 1}"], XML, HEADER, r"line 9: attribute index 9 out of range"),
        (["{0 1, 1}"], XML, HEADER, r"line 9: malformed sparse entry '1'"),
        (["{0 1"], XML, HEADER, r"line 9: sparse row without closing"),
        ([], XML, HEADER, r"toy\.arff: the dataset has no rows"),
        ([], XML, "@relation r\n@attribute a numeric\n", r"no @data line"),
        (["1"], XML, "@relation r\n@attribute a numeric\n", r"line 3: expected @relation"),
        (["1"], XML, "@relation r\n@attribute a blob\n@data\n", r"line 2: unsupported type 'blob'"),
        (["1"], "<labels><label/></labels>", HEADER, r"toy\.xml: no <label name"),
        (["1"], "<labels", HEADER, r"toy\.xml: not valid XML"),
    ],
)
def test_errors_name_file_and_line(tmp_path, rows, xml, header, match):
    arff = _write(tmp_path, rows, xml=xml, header=header)
    with pytest.raises(InputError, match=match) as info:
        read_arff(arff)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_arff(tmp_path / "nope.arff")


def test_find_xml(tmp_path):
    (tmp_path / "s.xml").write_text(XML)
    assert find_xml(tmp_path / "s-train.arff") == tmp_path / "s.xml"
    assert find_xml(tmp_path / "other.arff") is None


# --------------------------------------------------------------------------------------------
# the real MULAN sets
# --------------------------------------------------------------------------------------------
@pytest.mark.mulan
@pytest.mark.parametrize("name", MULAN_SETS)
def test_mulan_sets_load(shared_datasets, name):
    folder = shared_datasets / "mulan" / name
    ref = dict(
        line.split("\t")
        for line in (folder / "reference_measures.tsv").read_text().split("\n")
        if line
    )
    features, labels = read_arff(folder / f"{name}.arff")  # scene, birds: train + test
    assert labels.n_rows == int(ref["num.instances"]) == len(features)
    assert labels.n_labels == int(ref["num.labels"])
    assert features.shape[1] == int(ref["num.inputs"])
    names = pd.read_csv(folder / "reference_labels.csv", index_col=0).index.tolist()
    assert list(labels.names) == names
    assert set(read_mulan_xml(folder / f"{name}.xml")) == set(names)


@pytest.mark.mulan
def test_xml_order_differs_from_arff_order(shared_datasets):
    folder = shared_datasets / "mulan" / "yeast"
    xml_order = read_mulan_xml(folder / "yeast.xml")
    _, labels = read_arff(folder / "yeast.arff")
    assert xml_order != list(labels.names) and sorted(xml_order) == sorted(labels.names)


@pytest.mark.mulan
def test_sparse_bibtex_matches_its_train_test_halves(shared_datasets):
    folder = shared_datasets / "mulan" / "bibtex"
    f_all, y_all = read_arff(folder / "bibtex.arff")
    f_parts, y_parts = read_arff([folder / "bibtex-train.arff", folder / "bibtex-test.arff"])
    assert y_all.shape == y_parts.shape
    # same rows as a multiset (the halves are a split of the whole)
    key = lambda y: sorted(map(tuple, y.to_lists()))  # noqa: E731
    assert key(y_all) == key(y_parts)
    assert f_all.shape == f_parts.shape


def test_tabs_leading_spaces_and_blank_lines(tmp_path):
    text = textwrap.dedent("""\
        @RELATION r

          @ATTRIBUTE\ta\tNUMERIC
        @attribute "b c" {0,1}
        @DATA

        1,1
          2 , 0
    """)
    arff = tmp_path / "t.arff"
    arff.write_text(text)
    (tmp_path / "t.xml").write_text('<labels><label name="b c"/></labels>')
    f, y = read_arff(arff)
    assert y.names == ("b c",) and y.counts().tolist() == [1]
    assert f["a"].tolist() == [1.0, 2.0]


def test_quoted_values_with_commas_and_spaces(tmp_path):
    header = (
        "@relation r\n@attribute s string\n@attribute c {'a, b', \"x y\", plain}\n"
        "@attribute l {0,1}\n@data\n"
    )
    rows = [
        "'hello, world','a, b',1",
        '"it\'s","x y",0',
        "{0 'sparse, one', 1 'x y', 2 1}",
        "{1 plain}",
    ]
    arff = _write(tmp_path, rows, xml='<labels><label name="l"/></labels>', header=header)
    f, y = read_arff(arff)
    assert f["s"].tolist() == ["hello, world", "it's", "sparse, one", ""]
    assert f["c"].tolist() == ["a, b", "x y", "x y", "plain"]
    assert list(f["c"].cat.categories) == ["a, b", "x y", "plain"]
    assert y.counts().tolist() == [2]
