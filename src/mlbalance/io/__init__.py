"""Everything that touches files: readers, writers and the label layout.

See :func:`read_labels`, :func:`read_dataset`, :func:`iter_batches`, :func:`write_parquet`,
:func:`output_dir` and :class:`LabelSpec`. Formats: Parquet (file or folder of shards), CSV,
TSV, JSONL and MULAN ARFF with its XML label file. Labels are parsed once, on reading; every
Parquet file mlbalance writes holds them as one list column of label names with the vocabulary
in its metadata (:mod:`mlbalance.io.canonical`). The shard folder of ``resample`` is
:mod:`mlbalance.io.shards`; numeric features for MLSMOTE and embedding heads are
:mod:`mlbalance.io.features`.
"""

from mlbalance.io.features import FeatureSpec, read_features
from mlbalance.io.readers import (
    METADATA_KEY,
    detect_format,
    iter_batches,
    parquet_files,
    read_dataset,
    read_labels,
    read_metadata,
    read_table,
    resolve_spec,
)
from mlbalance.io.spec import Dataset, LabelSpec
from mlbalance.io.writers import (
    atomic_path,
    check_not_input,
    mlbalance_metadata,
    output_dir,
    write_json,
    write_parquet,
)

__all__ = [
    "METADATA_KEY",
    "Dataset",
    "FeatureSpec",
    "LabelSpec",
    "atomic_path",
    "check_not_input",
    "detect_format",
    "iter_batches",
    "mlbalance_metadata",
    "output_dir",
    "parquet_files",
    "read_dataset",
    "read_features",
    "read_labels",
    "read_metadata",
    "read_table",
    "resolve_spec",
    "write_json",
    "write_parquet",
]
