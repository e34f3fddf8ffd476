"""Resample a dataset on disk into balanced shards: the library behind ``mlbalance resample``.

Index-based methods decide from the label column alone (:func:`mlbalance.io.read_labels`) and
then copy rows shard by shard; MLSMOTE also reads its feature column (``embedding``).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlbalance.errors import InputError, ParameterError
from mlbalance.io import LabelSpec, output_dir, parquet_files, read_labels, resolve_spec
from mlbalance.io.readers import detect_format
from mlbalance.labels import LabelMatrix
from mlbalance.resample import METHODS
from mlbalance.resample.base import BaseResampler, Resampled
from mlbalance.resample.mlsmote import MLSMOTE
from mlbalance.resample.shards import (
    DEFAULT_ROWS_PER_SHARD,
    MANIFEST,
    build_manifest,
    write_shards,
)

__all__ = [
    "ResampleRun",
    "looks_like_evaluation",
    "make_resampler",
    "read_features",
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


def read_features(
    path: str | os.PathLike[str],
    column: str,
    *,
    format: str | None = None,
    spec: LabelSpec | None = None,
) -> np.ndarray:
    """A fixed-length numeric list column (e.g. ``embedding``) as a float32 ``(rows, dim)`` array."""
    fmt = detect_format(path, format)
    if fmt == "parquet":
        chunks = []
        for f in parquet_files(path):
            names = pq.read_schema(f).names
            if column not in names:
                raise InputError(
                    f"{f}: no feature column {column!r} (columns: "
                    f"{', '.join(names[:12])}); run `mlbalance embed` first or "
                    "pass --features"
                )
            chunks.append(pq.read_table(f, columns=[column]).column(column))
        col = pa.chunked_array([c for ch in chunks for c in ch.chunks])
    else:
        from mlbalance.io import read_dataset

        table = read_dataset(path, spec, format=fmt).table
        if column not in table.column_names:
            raise InputError(f"{path}: no feature column {column!r}")
        col = table.column(column)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (
        pa.types.is_list(col.type)
        or pa.types.is_large_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
    ):
        raise InputError(f"{path}: column {column!r} must be a list of numbers, got {col.type}")
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise InputError(f"{path}: column {column!r}, row {row} is null")
    vtype = col.type.value_type
    if not (pa.types.is_floating(vtype) or pa.types.is_integer(vtype)):
        raise InputError(f"{path}: column {column!r} must hold numbers, got {vtype}")
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
    else:
        lengths = np.asarray(pa.compute.list_value_length(col))
        dim = int(lengths[0]) if len(lengths) else 0
        if len(lengths) and (lengths != dim).any():
            row = int(np.flatnonzero(lengths != dim)[0])
            raise InputError(
                f"{path}: column {column!r}, row {row} has {lengths[row]} values, row 0 has {dim}"
            )
    values = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    out = values.reshape(len(col), dim)
    if not np.isfinite(out).all():
        r, c = np.argwhere(~np.isfinite(out))[0]
        raise InputError(f"{path}: column {column!r}, row {r}, value {c} is {out[r, c]}")
    return out


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
    features: str = "embedding",
    progress: bool | None = None,
    labels: LabelMatrix | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> ResampleRun:
    """Resample the dataset at *source* and write shards + ``manifest.json`` into *out*.

    The folder is built in a temporary sibling and renamed when complete; the manifest is
    written last. When the method has nothing to do (no minority label, ...), nothing is
    written and ``nothing_to_do`` says why.
    """
    if rows_per_shard < 1:
        raise ParameterError(f"rows per shard must be >= 1, got {rows_per_shard}")
    spec, vocab = (
        resolve_spec(source, spec, None)
        if detect_format(source, format) != "arff"
        else (spec or LabelSpec(), None)
    )
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if labels is None:
            labels = read_labels(
                source, spec, format=format, vocabulary=vocab, progress=bool(progress)
            )
        if isinstance(resampler, MLSMOTE):
            X = read_features(source, features, format=format, spec=spec)
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
        syn = resampler.synthetic_features_
        dim = syn.shape[1]
        flat = pa.array(np.ascontiguousarray(syn, dtype=np.float32).ravel())
        synthetic = pa.table({features: pa.FixedSizeListArray.from_arrays(flat, dim)})
    elif result.relabelled.any():
        added = ["source_row"]
    _check_no_clash(source, format, added, spec)
    params = {k: v for k, v in resampler.get_params().items() if k != "random_state"}
    seed = resampler.random_state if isinstance(resampler.random_state, int) else None
    with output_dir(out, overwrite=overwrite, inputs=[source]) as tmp:
        shards = write_shards(
            source,
            result,
            tmp,
            spec=spec,
            format=format,
            rows_per_shard=rows_per_shard,
            synthetic=synthetic,
            add_columns=added,
            extra_metadata={"method": method, "seed": seed},
            progress=progress,
        )
        extra = {"warnings": caught, **(extra_manifest or {})}
        if isinstance(resampler, MLSMOTE):
            extra["features"] = features
        manifest = build_manifest(
            method=method,
            parameters=params,
            seed=seed,
            source=str(source),
            spec=spec,
            before=labels,
            result=result,
            shards=shards,
            columns_added=added,
            extra=extra,
        )
        from mlbalance.io import write_json

        write_json(manifest, tmp / MANIFEST)
    return ResampleRun(manifest, result, labels, warnings=caught)


def _check_no_clash(
    source: str | os.PathLike[str], format: str | None, added: list[str], spec: LabelSpec
) -> None:
    if not added:
        return
    if detect_format(source, format) == "parquet":
        names = pq.read_schema(parquet_files(source)[0]).names
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
