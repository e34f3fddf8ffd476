"""Resample a dataset on disk into balanced shards: the library behind ``mlbalance resample``.

Index-based methods decide from the label column alone (:func:`mlbalance.io.read_labels`) and
then copy rows shard by shard; MLSMOTE also reads its feature column (``embedding``).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlbalance._version import __version__
from mlbalance.errors import InputError, ParameterError
from mlbalance.io import LabelSpec, output_dir, read_labels, resolve_spec
from mlbalance.io._parquet import parquet_files, schema_of
from mlbalance.io.features import FeatureSpec, feature_matrix, feature_table, read_feature_columns
from mlbalance.io.readers import detect_format
from mlbalance.io.shards import DEFAULT_ROWS_PER_SHARD, write_manifest, write_shards
from mlbalance.labels import LabelMatrix
from mlbalance.resample import METHODS
from mlbalance.resample.base import BaseResampler, Resampled, imbalance_measures
from mlbalance.resample.mlsmote import MLSMOTE

__all__ = [
    "ResampleRun",
    "build_manifest",
    "looks_like_evaluation",
    "make_resampler",
    "resample_dataset",
]

_EVAL_WORDS = {"val", "valid", "validation", "dev", "test", "eval"}


def looks_like_evaluation(path: str | os.PathLike[str]) -> bool:
    """True when a file or folder name says val, valid, dev or test (e.g. ``dev.tsv``)."""
    p = Path(path)
    parts = [p.name.split(".")[0], *([p.parent.name] if p.parent.name else [])]
    for part in parts:
        if set(re.split(r"[^a-z]+", part.lower())) & _EVAL_WORDS:
            return True
    return False


def make_resampler(method: str, **params: Any) -> BaseResampler:
    """The resampler of CLI method *method* with the given parameters (None values dropped)."""
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    allowed = set(cls._parameter_constraints)
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ParameterError(f"method {method} does not take {', '.join(unknown)}")
    return cls(**given)


def _counts_dict(labels: LabelMatrix) -> dict[str, int]:
    return {n: int(c) for n, c in zip(labels.names, labels.counts())}


def build_manifest(
    *,
    method: str,
    parameters: dict[str, Any],
    seed: int | None,
    source: str,
    spec: LabelSpec,
    before: LabelMatrix,
    result: Resampled,
    shards: list[dict[str, Any]],
    columns_added: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a resampled shard folder (JSON-ready, deterministic: no timestamps).

    ``input`` holds the input's file name and rows, never a machine-local path; ``label_spec``
    is the written layout (one list column of names).
    """
    after = result.labels
    manifest: dict[str, Any] = {
        "mlbalance_version": __version__,
        "method": method,
        "parameters": parameters,
        "seed": seed,
        "input": {"name": Path(source).name, "rows": int(result.n_input)},
        "rows": int(result.n_output),
        "report": result.report(),
        "labels": list(after.names),
        "label_spec": spec.to_dict(),
        "columns_added": list(columns_added),
        "label_counts_before": _counts_dict(before),
        "label_counts_after": _counts_dict(after),
        "measures_before": imbalance_measures(before),
        "measures_after": imbalance_measures(after),
        "shards": shards,
    }
    if extra:
        manifest.update(extra)
    return manifest


@dataclass
class ResampleRun:
    """What :func:`resample_dataset` did."""

    manifest: dict[str, Any] | None
    result: Resampled
    before: LabelMatrix
    nothing_to_do: str | None = None
    warnings: list[str] = field(default_factory=list)


def resample_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    resampler: BaseResampler,
    *,
    method: str,
    spec: LabelSpec | None = None,
    format: str | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    overwrite: bool = False,
    features: str | FeatureSpec | None = None,
    progress: bool | None = None,
    labels: LabelMatrix | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> ResampleRun:
    """Resample the dataset at *source* and write shards + ``__mlbalance__/manifest.json`` into *out*.

    The folder is built in a temporary sibling and renamed when complete; the manifest is
    written last. When the method has nothing to do (no minority label, ...), nothing is
    written and ``nothing_to_do`` says why. MLSMOTE reads its features as *features* says: a
    :class:`~mlbalance.io.features.FeatureSpec`, or the name of an embedding (list) column;
    default ``embedding``, or a MULAN ARFF file's features.
    """
    if rows_per_shard < 1:
        raise ParameterError(
            f"rows_per_shard must be >= 1, got {rows_per_shard}", param="rows_per_shard"
        )
    fmt = detect_format(source, format)
    spec, vocab = resolve_spec(source, spec, None) if fmt != "arff" else (spec or LabelSpec(), None)
    feats = default_features(features, fmt)
    caught: list[str] = []
    feature_columns: pa.Table | None = None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if labels is None:
            labels = read_labels(
                source, spec, format=format, vocabulary=vocab, progress=bool(progress)
            )
        if isinstance(resampler, MLSMOTE):
            feature_columns = read_feature_columns(source, feats, spec=spec, format=format)
            only = (
                feats
                if feats.embedding_column
                else FeatureSpec(feature_columns=tuple(feature_columns.column_names))
            )
            X = feature_matrix(feature_columns, only, source=str(source))
            resampler.fit_resample(X, labels)
            result = resampler.result_
        else:
            result = resampler.sample(labels)
    caught = [str(w.message) for w in seen if w.category is UserWarning]
    for msg in caught:
        warnings.warn(msg, UserWarning, stacklevel=2)
    reason = _nothing_to_do(resampler, result)
    if reason:
        return ResampleRun(None, result, labels, nothing_to_do=reason, warnings=caught)
    added: list[str] = []
    synthetic = None
    if isinstance(resampler, MLSMOTE):
        added = ["synthetic", "source_row", "neighbour_row"]
        assert feature_columns is not None
        synthetic = feature_table(resampler.synthetic_features_, feature_columns, feats)
    elif result.relabelled.any():
        added = ["source_row"]
    _check_no_clash(source, fmt, added)
    params = {k: v for k, v in resampler.get_params().items() if k != "random_state"}
    seed = resampler.random_state if isinstance(resampler.random_state, int) else None
    with output_dir(out, overwrite=overwrite, inputs=[source]) as tmp:
        shards = write_shards(
            source,
            result,
            tmp,
            input_labels=labels,
            spec=spec,
            format=format,
            rows_per_shard=rows_per_shard,
            synthetic=synthetic,
            add_columns=added,
            extra_metadata={"method": method, "seed": seed},
            progress=progress,
        )
        extra: dict[str, Any] = {"warnings": caught, **(extra_manifest or {})}
        if isinstance(resampler, MLSMOTE):
            extra["features"] = {k: v for k, v in asdict(feats).items() if v is not None}
        manifest = build_manifest(
            method=method,
            parameters=params,
            seed=seed,
            source=str(source),
            spec=_written_spec(tmp / shards[0]["file"]),
            before=labels,
            result=result,
            shards=shards,
            columns_added=added,
            extra=extra,
        )
        write_manifest(tmp, manifest)
    return ResampleRun(manifest, result, labels, warnings=caught)


def default_features(features: str | FeatureSpec | None, fmt: str) -> FeatureSpec:
    """MLSMOTE's features: as given (a column name is an embedding column), else the ARFF
    file's features, else the ``embedding`` column."""
    if isinstance(features, FeatureSpec) and not features.is_empty:
        return features
    if isinstance(features, str):
        return FeatureSpec(embedding_column=features)
    return FeatureSpec() if fmt == "arff" else FeatureSpec(embedding_column="embedding")


def _written_spec(shard: Path) -> LabelSpec:
    """The label layout the shards were written in (stored in each shard's metadata)."""
    from mlbalance.io import read_metadata

    return LabelSpec.from_dict((read_metadata(shard) or {}).get("label_spec") or {})


def _check_no_clash(source: str | os.PathLike[str], fmt: str, added: list[str]) -> None:
    if not added or fmt != "parquet":
        return
    names = schema_of(parquet_files(source)[0]).names
    clash = [c for c in added if c in names]
    if clash:
        raise InputError(
            f"{source}: already has column {clash[0]!r}, which this method adds "
            "(is it already a resampled output?)"
        )


def _nothing_to_do(resampler: BaseResampler, result: Resampled) -> str | None:
    if (
        result.n_output == result.n_input
        and result.index_only
        and np.array_equal(result.indices, np.arange(result.n_input))
    ):
        name = type(resampler).__name__
        if hasattr(resampler, "minority_labels_") and not len(resampler.minority_labels_):
            return f"{name}: no minority label (IRLbl > MeanIR); nothing to do"
        if hasattr(resampler, "majority_labels_") and not len(resampler.majority_labels_):
            return f"{name}: no majority label (IRLbl < MeanIR); nothing to do"
        return f"{name}: the output would equal the input; nothing to do"
    if (
        result.n_output == result.n_input
        and not result.synthetic.any()
        and not result.relabelled.any()
    ):
        return None
    if isinstance(resampler, MLSMOTE) and not result.synthetic.any():
        return "MLSMOTE: no synthetic row could be made (no minority label with 2+ rows)"
    return None
