"""Split, then resample the training split only: the library behind ``mlbalance prepare``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlbalance.errors import ParameterError
from mlbalance.io import LabelSpec, output_dir, write_json
from mlbalance.resample.base import BaseResampler
from mlbalance.resample.shards import DEFAULT_ROWS_PER_SHARD

__all__ = ["REPORT_NAME", "prepare_dataset"]

REPORT_NAME = "prepare_report.json"


def prepare_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    resampler: BaseResampler,
    *,
    method: str,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    order: int = 1,
    seed: int = 0,
    spec: LabelSpec | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    features: str = "embedding",
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Split *source* by iterative stratification, resample the first split (train) only.

    Writes ``out/train`` (balanced shards + ``manifest.json``), ``out/val`` and ``out/test``
    (the other splits, untouched, one Parquet file each, same label vocabulary) and
    ``out/prepare_report.json`` (the split quality report and the resampling summary). The
    whole folder is built in a temporary sibling and renamed when complete.
    """
    from mlbalance.split.files import default_split_names, split_to_folder

    ratios = list(ratios)
    if len(ratios) < 2:
        raise ParameterError(f"prepare needs at least two ratios (train and more), got {ratios}")
    names = default_split_names(len(ratios), folds=False)
    with output_dir(out, overwrite=overwrite, inputs=[source]) as tmp:
        tmp = Path(tmp)
        splits = tmp / "_splits"
        _, split_doc = split_to_folder(
            source, splits, ratios=ratios, order=order, seed=seed, spec=spec, names=names
        )
        train_file = splits / f"{names[0]}.parquet"
        train_rows = int(split_doc["rows"] - sum(_rows(splits / f"{n}.parquet") for n in names[1:]))
        from mlbalance.resample.dataset import resample_dataset

        run = resample_dataset(
            train_file,
            tmp / names[0],
            resampler,
            method=method,
            spec=spec,
            rows_per_shard=rows_per_shard,
            features=features,
            progress=progress,
            extra_manifest={
                "input": {"path": f"{source} (split {names[0]!r})", "rows": train_rows}
            },
        )
        if run.nothing_to_do:  # the train split is written as it is
            (tmp / names[0]).mkdir()
            os.replace(train_file, tmp / names[0] / "part-00000-of-00001.parquet")
        for name in names[1:]:
            (tmp / name).mkdir()
            os.replace(splits / f"{name}.parquet", tmp / name / "part-00000-of-00001.parquet")
        shutil.rmtree(splits)
        report: dict[str, Any] = {
            "input": str(source),
            "out": str(out),
            "splits": {n: f"{n}/" for n in names},
            "split": {k: v for k, v in split_doc.items() if k != "files"},
            "resampled": names[0],
            "method": method,
            "nothing_to_do": run.nothing_to_do,
            "resample": None
            if run.manifest is None
            else {
                k: run.manifest[k]
                for k in (
                    "parameters",
                    "seed",
                    "rows",
                    "report",
                    "measures_before",
                    "measures_after",
                    "shards",
                )
            },
            "warnings": run.warnings,
        }
        write_json(report, tmp / REPORT_NAME)
    return report


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
