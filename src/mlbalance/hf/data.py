"""Hugging Face ``datasets`` adapters: mlbalance outputs as a ``DatasetDict``, a stratified split.

The files of ``mlbalance split``, ``resample`` and ``prepare`` load with
``datasets.load_dataset("parquet", data_dir=OUT)`` as they are (the side files sit in
``__mlbalance__/``, which ``datasets`` skips; ``val.parquet`` becomes the ``validation``
split), with the labels as lists of names. That path drops the Parquet metadata, and with it
the vocabulary (a label no row of a split has is unknown there). :func:`load_split` keeps it:
the label column becomes ``List(ClassLabel(names=vocabulary))``, which every ``map``,
``select`` and ``train_test_split`` carries along.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance.errors import InputError
from mlbalance.hf._labels import label_matrix, label_vocabulary
from mlbalance.hf._require import require

__all__ = ["label_matrix", "label_vocabulary", "load_split", "train_test_split"]

_SHARD = re.compile(r"^part-\d+-of-\d+$")
_ORDER = ("train", "val", "validation", "test")


def _split_files(folder: Path) -> dict[str, Path]:
    """``{split name: path}``: one entry per file of a split folder, or ``train`` for shards."""
    from mlbalance.io._parquet import parquet_files
    from mlbalance.io.shards import LEGACY_MANIFEST, MANIFEST

    if folder.is_file():
        return {folder.stem: folder}
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    if (folder / MANIFEST).is_file() or (folder / LEGACY_MANIFEST).is_file():
        return {"train": folder}  # the shards of resample / prepare: one training set
    files = parquet_files(folder)
    if all(_SHARD.match(f.stem) for f in files):
        return {"train": folder}
    nested = [f for f in files if f.parent != folder]
    if nested:
        raise InputError(
            f"{folder}: {nested[0].relative_to(folder)} is in a sub-folder; expected the split "
            "files of mlbalance split (train.parquet, val.parquet, ...) or a shard folder"
        )
    ranked = sorted(files, key=lambda f: (_ORDER.index(f.stem) if f.stem in _ORDER else 9, f.stem))
    return {f.stem: f for f in ranked}


def load_split(
    folder: str | os.PathLike[str], *, class_label: bool = True
) -> Any:  # -> datasets.DatasetDict
    """The splits of a ``mlbalance split`` folder (or a ``resample`` shard folder) as a
    :class:`datasets.DatasetDict`.

    Parameters
    ----------
    folder : path
        A folder of split files (``train.parquet``, ``val.parquet``, ``test.parquet``,
        ``fold-0.parquet`` ...: one split each, named by the file), a shard folder of
        ``resample``/``prepare`` (one ``train`` split) or one Parquet file (a split named by
        its stem). ``prepare``'s output holds both: pass its ``train`` shard folder and its
        split files' folder separately.
    class_label : bool, default True
        Cast the label column to ``List(ClassLabel(names=vocabulary))`` (label ids; the
        vocabulary travels with the dataset). False keeps the lists of names as strings.

    Returns
    -------
    datasets.DatasetDict
        Every column of the files; the labels in one column (``labels`` unless the files were
        written with another name). Every split is read before any is cast: the
        ``ClassLabel`` names are the union of the splits' vocabularies (the stored order of
        the first split, then names only later splits have), the same for every split, so
        label ids agree across splits.

    Examples
    --------
    >>> splits = load_split("splits/")  # doctest: +SKIP
    >>> splits["train"].features["labels"].feature.names[:3]  # doctest: +SKIP
    ['anger', 'joy', 'sadness']
    """
    datasets = require("datasets")
    from datasets.table import InMemoryTable

    from mlbalance.io import read_dataset
    from mlbalance.io.canonical import canonical_table

    # every split is read first: the vocabulary is their union (each split's names in its
    # stored order, else sorted; later splits' new names after), so all share label ids
    vocabulary: dict[str, None] = {}
    read = {}
    for name, path in _split_files(Path(folder)).items():
        data = read_dataset(path)
        vocabulary.update(dict.fromkeys(data.labels.names))
        read[name] = canonical_table(data.table, data.labels, data.spec)
    feature = datasets.Sequence(datasets.ClassLabel(names=list(vocabulary)))
    out = {}
    for name, (table, spec) in read.items():
        ds = datasets.Dataset(InMemoryTable(table.replace_schema_metadata(None)))
        out[name] = ds.cast_column(spec.column, feature) if class_label else ds
    return datasets.DatasetDict(out)


def train_test_split(
    dataset: Any,
    *,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    label_column: str = "labels",
    label_names: Sequence[str] | None = None,
    order: int = 1,
    shuffle: bool = True,
    seed: int | None = None,
    ensure_eval_labels: bool = False,
) -> Any:  # -> datasets.DatasetDict
    """``Dataset.train_test_split`` stratified on a multilabel column (iterative stratification).

    Parameters
    ----------
    dataset : datasets.Dataset
        Rows with a label column of names, ``ClassLabel`` ids or multi-hot lists.
    test_size, train_size : float, int or None
        Fractions or row counts, as :func:`mlbalance.split.multilabel_train_test_split`
        (test 0.25 when both are None).
    label_column : str, default "labels"
    label_names : sequence of str, optional
        The vocabulary (needed for a multi-hot column).
    order : {1, 2}
        First order (labels) or second order (label pairs) stratification.
    shuffle : bool, default True
    seed : int, optional
        The same seed gives the same split.
    ensure_eval_labels : bool, default False
        Every label with at least 2 rows gets a row in the test part.

    Returns
    -------
    datasets.DatasetDict
        ``{"train": ..., "test": ...}``, rows in their original order; every row is in exactly
        one part.
    """
    datasets = require("datasets")
    from mlbalance.split import multilabel_train_test_split

    y = label_matrix(dataset, label_column, label_names)
    rows = np.arange(y.n_rows)
    train_rows, test_rows = multilabel_train_test_split(
        rows, y=y, test_size=test_size, train_size=train_size, order=order, shuffle=shuffle,
        random_state=seed, ensure_eval_labels=ensure_eval_labels,
    )  # fmt: skip
    return datasets.DatasetDict(
        {
            "train": dataset.select(np.sort(train_rows)),
            "test": dataset.select(np.sort(test_rows)),
        }
    )
