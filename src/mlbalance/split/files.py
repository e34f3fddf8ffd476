"""Split a dataset into one Parquet file per split, plus ``__mlbalance__/split_report.json``.

The edge between :mod:`mlbalance.io` and the splitting algorithm; the ``mlbalance split``
command and the demo call :func:`split_to_folder`. Every split file holds the input's columns
with the labels as one list column of names (:mod:`mlbalance.io.canonical`) and the whole
vocabulary in its metadata. The report sits in the ``__mlbalance__`` side folder, which Arrow,
pandas and Hugging Face ``datasets`` skip, so they read the folder as the union of the splits.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance._progress import progress
from mlbalance.errors import InputError, ParameterError
from mlbalance.io.writers import SIDE_DIR, side_file
from mlbalance.split._iterative import check_ratios, encode_groups, stratified_split
from mlbalance.split._quality import SplitReport, split_report

__all__ = ["REPORT_NAME", "default_split_names", "fold_files", "split_to_folder"]

REPORT_NAME = f"{SIDE_DIR}/split_report.json"
#: The report's name in folders written by mlbalance 0.1.
LEGACY_REPORT_NAME = "split_report.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_split_names(n_splits: int, *, folds: bool) -> list[str]:
    """``fold-0 ..`` for folds; ``train,test`` / ``train,val,test`` / ``split-0 ..`` otherwise."""
    if folds:
        return [f"fold-{j}" for j in range(n_splits)]
    if n_splits == 2:
        return ["train", "test"]
    if n_splits == 3:
        return ["train", "val", "test"]
    return [f"split-{j}" for j in range(n_splits)]


def _check_names(names: Sequence[str], n_splits: int) -> list[str]:
    out = [str(n).strip() for n in names]
    if len(out) != n_splits:
        raise ParameterError(f"got {len(out)} split names ({','.join(out)}) for {n_splits} splits")
    for name in out:
        if not _SAFE_NAME.match(name) or name == LEGACY_REPORT_NAME.removesuffix(".json"):
            raise ParameterError(
                f"split name {name!r} is not usable as a file name (letters, digits, . _ -)"
            )
    if len(set(out)) != len(out):
        raise ParameterError(f"split names must be distinct, got {','.join(out)}")
    return out


def fold_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The fold files of a ``split --folds`` folder, in fold order.

    The report's list of files when it records folds (names given with ``names=`` included),
    else the files ``fold-0.parquet``, ``fold-1.parquet``, ... found in the folder.

    Raises
    ------
    InputError
        *folder* is not a folder, or a file its report names is missing.
    """
    import json

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder}: no such folder (the output of split with folds)")
    report = root / REPORT_NAME
    if report.is_file():
        try:
            doc = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{report}: cannot read the split report: {exc}") from None
        if isinstance(doc, dict) and doc.get("folds") and isinstance(doc.get("files"), dict):
            from mlbalance.io.shards import check_file_name

            files = [root / check_file_name(n, report, "fold file") for n in doc["files"].values()]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise InputError(f"{folder}: fold file(s) {', '.join(missing)} missing")
            return files
    found = [
        (int(m.group(1)), f)
        for f in root.glob("fold-*.parquet")
        if (m := re.fullmatch(r"fold-(\d+)\.parquet", f.name))
    ]
    return [f for _, f in sorted(found)]


def split_to_folder(
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    ratios: Sequence[float] | None = None,
    folds: int | None = None,
    names: Sequence[str] | None = None,
    order: int = 1,
    groups: str | None = None,
    seed: int = 0,
    shuffle: bool = False,
    ensure_eval_labels: bool = False,
    overwrite: bool = False,
    spec: Any = None,
) -> tuple[SplitReport, dict[str, Any]]:
    """Read *input*, split it by iterative stratification and write one Parquet per split.

    Parameters
    ----------
    input : path
        Any dataset :func:`mlbalance.io.read_dataset` reads.
    out : path
        Output folder; refused when non-empty unless ``overwrite``. Written atomically.
    ratios : sequence of float, optional
        Split proportions (default 0.8, 0.1, 0.1). Exclusive with ``folds``.
    folds : int, optional
        Number of equal folds (files ``fold-0`` .. ``fold-K-1``).
    names : sequence of str, optional
        File names of the splits (without ``.parquet``).
    order : {1, 2}
        First or second order stratification.
    groups : str, optional
        Column whose rows must stay together.
    seed : int
        Random seed; the same seed writes the same files.
    shuffle, ensure_eval_labels : bool
        See :func:`mlbalance.split.iterative_stratification`.
    overwrite : bool
        Replace a non-empty output folder.
    spec : LabelSpec, optional
        Label layout; default the stored one or a ``labels`` list column.

    Returns
    -------
    (SplitReport, dict)
        The quality report and the JSON document written to ``__mlbalance__/split_report.json``.
    """
    from mlbalance.io import output_dir, read_dataset, write_json, write_parquet
    from mlbalance.io.canonical import canonical_table

    if ratios is not None and folds is not None:
        raise ParameterError("give split ratios or a number of folds, not both")
    if folds is not None:
        plan: int | np.ndarray = int(folds)
        r = check_ratios(plan)
    else:
        r = check_ratios(list(ratios) if ratios is not None else [0.8, 0.1, 0.1])
        plan = r
    k = r.shape[0]
    split_names = (
        _check_names(names, k) if names else default_split_names(k, folds=folds is not None)
    )

    t0 = time.perf_counter()
    data = read_dataset(input, spec)
    n = data.n_rows
    if n == 0:
        raise InputError(f"{input}: no rows to split")
    if folds is not None and folds > n:
        raise ParameterError(f"{input}: cannot split {n} rows into {folds} folds")
    group_codes = None
    group_values = None
    if groups is not None:
        if groups not in data.table.column_names:
            cols = ", ".join(data.table.column_names[:12])
            raise InputError(f"{input}: no groups column {groups!r} (columns: {cols})")
        group_values = data.table.column(groups).to_numpy(zero_copy_only=False)
        group_codes, _ = encode_groups(group_values, n, what=f"{input}: groups column {groups!r}")
    t_read = time.perf_counter() - t0

    t1 = time.perf_counter()
    result = stratified_split(
        data.labels,
        plan,
        order=order,
        groups=group_codes,
        shuffle=shuffle,
        random_state=seed,
        ensure_eval_labels=ensure_eval_labels,
    )
    ids = result.ids
    t_split = time.perf_counter() - t1
    report = split_report(data.labels, ids, r, split_names=split_names, repairs=result.repairs)
    if group_codes is not None:
        per_split = [int(np.unique(group_codes[ids == j]).size) for j in range(k)]
        report.extra["groups"] = {
            "column": groups,
            "n_groups": int(group_codes.max()) + 1,
            "per_split": dict(zip(split_names, per_split)),
        }

    doc: dict[str, Any] = {
        "input": Path(input).name,
        "rows": n,
        "method": "iterative stratification, "
        + (
            "first order (Sechidis et al. 2011)"
            if order == 1
            else "second order (Szymański and Kajdanowicz 2017)"
        ),
        "order": order,
        "ratios": r.tolist(),
        "folds": folds,
        "seed": seed,
        "shuffle": shuffle,
        "ensure_eval_labels": ensure_eval_labels,
        "files": {name: f"{name}.parquet" for name in split_names},
        **report.to_dict(),
        "seconds": {"read": round(t_read, 3), "split": round(t_split, 3)},
    }
    table, out_spec = canonical_table(data.table, data.labels, data.spec)
    t2 = time.perf_counter()
    with output_dir(out, overwrite=overwrite, inputs=[input]) as tmp:
        for j, name in progress(list(enumerate(split_names)), desc="writing splits", unit="split"):
            rows = np.flatnonzero(ids == j)
            write_parquet(
                table.take(rows),
                Path(tmp) / f"{name}.parquet",
                labels=data.labels.names,
                spec=out_spec,
                rows=data.labels.take(rows),
                extra_metadata={"split": name, "split_rows": int(rows.size), "split_seed": seed},
            )
        doc["seconds"]["write"] = round(time.perf_counter() - t2, 3)
        write_json(doc, side_file(tmp, "split_report.json"))
    return report, doc
