"""Split, then resample the training split only: the library behind ``mlbalance prepare``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlbalance.errors import InputError, MlbalanceError, ParameterError
from mlbalance.io import LabelSpec, output_dir, write_json
from mlbalance.io.features import FeatureSpec
from mlbalance.io.readers import detect_format
from mlbalance.io.shards import DEFAULT_ROWS_PER_SHARD, shard_name
from mlbalance.io.writers import SIDE_DIR, side_file
from mlbalance.resample.base import BaseResampler
from mlbalance.resample.mlsmote import MLSMOTE

__all__ = ["REPORT_NAME", "prepare_dataset"]

#: The report beside train/, val/, test/ (in the side folder that Parquet readers skip).
REPORT_NAME = f"{SIDE_DIR}/prepare_report.json"


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
    features: str | FeatureSpec | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Split *source* by iterative stratification, resample the first split (train) only.

    Writes ``out/train`` (balanced shards + ``__mlbalance__/manifest.json``), ``out/val`` and ``out/test``
    (the other splits, untouched, one Parquet file each, same label vocabulary) and
    ``out/__mlbalance__/prepare_report.json`` (the split quality report and the resampling summary). The
    whole folder is built in a temporary sibling and renamed when complete. Every file holds
    the labels as one list column of names. MLSMOTE's features are checked on *source* before
    anything is split, and no message names the temporary folder.
    """
    from mlbalance.split.files import default_split_names

    ratios = list(ratios)
    if len(ratios) < 2:
        raise ParameterError(
            f"prepare needs at least two ratios (train and more), got {ratios}", param="ratios"
        )
    names = default_split_names(len(ratios), folds=False)
    if isinstance(resampler, MLSMOTE):
        _check_features(source, features, spec)
    with output_dir(out, overwrite=overwrite, inputs=[source]) as tmp:
        try:
            return _prepare(
                source,
                Path(tmp),
                resampler,
                method=method,
                ratios=ratios,
                names=names,
                order=order,
                seed=seed,
                spec=spec,
                rows_per_shard=rows_per_shard,
                features=features,
                progress=progress,
            )
        except MlbalanceError as exc:
            raise _without_temp(exc, Path(tmp), source) from None


def _check_features(
    source: str | os.PathLike[str], features: str | FeatureSpec | None, spec: LabelSpec | None
) -> None:
    """Fail before splitting when MLSMOTE's features are not in *source*."""
    from mlbalance.io.features import read_feature_columns
    from mlbalance.resample.dataset import default_features

    fmt = detect_format(source)
    read_feature_columns(source, default_features(features, fmt), spec=spec)


def _without_temp(exc: MlbalanceError, tmp: Path, source: str | os.PathLike[str]) -> MlbalanceError:
    """*exc* with the temporary folder's paths replaced by what the user knows (the input)."""
    text = str(exc)
    for inner in sorted(tmp.rglob("*"), key=lambda p: -len(str(p))):
        split = inner.stem if inner.suffix == ".parquet" else inner.name
        text = text.replace(str(inner), f"{source} ({split} split)")
    text = text.replace(str(tmp), str(source))
    if isinstance(exc, ParameterError):
        return ParameterError(text, param=exc.params)
    return InputError(text) if isinstance(exc, InputError) else MlbalanceError(text)


def _prepare(
    source: str | os.PathLike[str],
    tmp: Path,
    resampler: BaseResampler,
    *,
    method: str,
    ratios: list[float],
    names: list[str],
    order: int,
    seed: int,
    spec: LabelSpec | None,
    rows_per_shard: int,
    features: str | FeatureSpec | None,
    progress: bool | None,
) -> dict[str, Any]:
    """Split into ``tmp/_splits``, resample its train file into ``tmp/train``, move the rest."""
    from mlbalance.resample.dataset import resample_dataset
    from mlbalance.split.files import split_to_folder

    splits = tmp / "_splits"
    _, split_doc = split_to_folder(
        source, splits, ratios=ratios, order=order, seed=seed, spec=spec, names=names
    )
    train_file = splits / f"{names[0]}.parquet"
    train_rows = int(split_doc["rows"] - sum(_rows(splits / f"{n}.parquet") for n in names[1:]))
    run = resample_dataset(  # the split files hold labels as names: no spec needed
        train_file,
        tmp / names[0],
        resampler,
        method=method,
        rows_per_shard=rows_per_shard,
        features=features,
        progress=progress,
        extra_manifest={
            "input": {"name": f"{Path(source).name} (split {names[0]!r})", "rows": train_rows}
        },
    )
    if run.nothing_to_do:  # the train split is written as it is
        (tmp / names[0]).mkdir()
        os.replace(train_file, tmp / names[0] / shard_name(0, 1))
    for name in names[1:]:
        (tmp / name).mkdir()
        os.replace(splits / f"{name}.parquet", tmp / name / shard_name(0, 1))
    shutil.rmtree(splits)
    resample = None
    if run.manifest is not None:
        keys = ("parameters", "seed", "rows", "report", "measures_before", "measures_after")
        resample = {k: run.manifest[k] for k in (*keys, "shards")}
    report: dict[str, Any] = {
        "input": Path(source).name,
        "splits": {n: f"{n}/" for n in names},
        "split": {k: v for k, v in split_doc.items() if k != "files"},
        "resampled": names[0],
        "method": method,
        "nothing_to_do": run.nothing_to_do,
        "resample": resample,
        "warnings": run.warnings,
    }
    write_json(report, side_file(tmp, "prepare_report.json"))
    return report


def _rows(path: Path) -> int:
    from mlbalance.io._parquet import open_parquet

    return int(open_parquet(path).metadata.num_rows)
