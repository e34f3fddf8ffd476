"""The parts of a training run, built from a :class:`~mlbalance.train.config.TrainConfig`.

The splits (read with train's label vocabulary), the model (an encoder classifier or a head on
embeddings), the loss, the batch datasets, the sampler (with what it does to the epoch), and
AdamW with its warm-up/decay schedule. :mod:`mlbalance.train.trainer` puts them together.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.errors import InputError, ParameterError
from mlbalance.io.features import FeatureSpec
from mlbalance.train.batching import TokenBatches, TokenCache
from mlbalance.train.config import TrainConfig
from mlbalance.train.data import (
    EmbeddingBatches,
    SplitData,
    align_labels,
    describe_paths,
    detect_embedding,
    load_split,
)
from mlbalance.train.model import (
    EmbeddingHead,
    build_encoder_model,
    load_tokenizer,
    parameter_groups,
    resolve_model_path,
)
from mlbalance.train.options import column_names, path_list
from mlbalance.train.runtime import Runtime

__all__ = [
    "RunData",
    "build_model",
    "build_optimizer",
    "build_sampler",
    "check_output",
    "epoch_order",
    "input_features",
    "make_dataset",
    "pad_multiple",
    "read_run_data",
]

Log = Callable[[str], None]


def check_output(cfg: TrainConfig) -> None:
    """Refuse an output folder that is an input, a file, or not empty (without overwrite)."""
    from mlbalance.io import check_not_input

    out = Path(cfg.out)
    check_not_input(out, [*path_list(cfg.train), *(p for p in (cfg.val, cfg.test) if p)])
    if out.is_file():
        raise ParameterError(f"output folder {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise ParameterError(
            f"output folder {out} is not empty; pass overwrite=True to replace it",
            param="overwrite",
        )


@dataclass
class RunData:
    """The splits of a run, read with train's label vocabulary."""

    train: SplitData
    val: SplitData
    test: SplitData | None
    names: list[str]
    counts: np.ndarray
    train_y: Any
    val_y: Any
    unseen: dict[str, dict[str, int]]
    embedding: bool

    @property
    def mode(self) -> str:
        """``embedding`` (a head on numeric features) or ``text`` (an encoder)."""
        return "embedding" if self.embedding else "text"

    def feature_record(self) -> dict[str, Any] | None:
        """Where a head's inputs are, resolved (what ``evaluate``/``predict`` read again):
        ``{"embedding_column": ...}`` or ``{"feature_columns": [...]}``; None for text."""
        features = self.train.features
        if features is None:
            return None
        if features.embedding_column:
            return {"embedding_column": features.embedding_column}
        return {"feature_columns": list(features.feature_columns or ())}


def _unseen(split: SplitData, names: list[str], train_counts: np.ndarray) -> dict[str, int]:
    y, extra = align_labels(split, names)
    unseen = dict(extra)
    in_split = np.asarray(y.sum(axis=0)).ravel()
    for j in np.flatnonzero((train_counts == 0) & (in_split > 0)):
        unseen[names[j]] = int(in_split[j])
    return unseen


def input_features(cfg: TrainConfig) -> FeatureSpec | None:
    """The numeric features a head is trained on, or None for text (an encoder).

    ``feature_columns`` / ``feature_prefix`` when given; else a MULAN ARFF file's attributes;
    else the embedding column when the training data has it.
    """
    from mlbalance.io import detect_format

    named = FeatureSpec(
        feature_columns=column_names(cfg.feature_columns), feature_prefix=cfg.feature_prefix
    )
    if not named.is_empty:
        return named
    first = path_list(cfg.train)[0]  # several train files: the first one's layout
    if Path(first).exists() and detect_format(first) == "arff":
        return FeatureSpec()
    if detect_embedding(first, cfg.embedding_column):
        return FeatureSpec(embedding_column=cfg.embedding_column)
    return None


def _describe_features(features: FeatureSpec | None) -> str:
    if features is None:
        return "no features"
    if features.embedding_column:
        return f"the embedding column {features.embedding_column!r}"
    cols = list(features.feature_columns or ())
    shown = ", ".join(cols[:3]) + (", ..." if len(cols) > 3 else "")
    return f"the {len(cols)} feature column(s) {shown}"


def read_run_data(cfg: TrainConfig, say: Log) -> RunData:
    """Read train, val (and test); report the labels val/test have that train never saw.

    Val and test are read with the feature columns train resolved (a prefix or an ARFF
    file's attributes named one by one), so every split has the same features in one order.
    """
    spec = cfg.label_spec()
    features = input_features(cfg)
    columns: dict[str, Any] = {"text_column": cfg.text_column, "training": True}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_split(cfg.train, spec=spec, features=features, **columns)
        names = list(train.labels.names)
        columns["features"] = train.features
        val = load_split(cfg.val, spec=spec, vocabulary=names, **columns)
        test = load_split(cfg.test, spec=spec, vocabulary=names, **columns) if cfg.test else None
    for w in caught:
        say(f"warning: {w.message}")
    if features is not None and cfg.model:
        say(
            f"warning: model {cfg.model} is not used: {_describe_features(train.features)} of "
            f"{describe_paths(cfg.train)} are the inputs, so only a head is trained"
        )
    counts = train.labels.counts().astype(np.int64)
    val_y, _ = align_labels(val, names)
    unseen = {"val": _unseen(val, names, counts)}
    if test is not None:
        unseen["test"] = _unseen(test, names, counts)
    for which, labels in unseen.items():
        if labels:
            say(
                f"warning: {which} has {len(labels)} label(s) that train never saw (left out "
                f"of the metrics): " + ", ".join(f"{k} ({v})" for k, v in list(labels.items())[:8])
            )
    train_y = train.labels.matrix.tocsr()
    return RunData(train, val, test, names, counts, train_y, val_y, unseen, features is not None)


def build_model(cfg: TrainConfig, data: RunData) -> tuple[torch.nn.Module, Any, str]:
    """``(model, tokenizer or None, description)``: an encoder classifier or an embedding head."""
    if data.embedding:
        assert data.train.embeddings is not None
        dim = data.train.embeddings.shape[1]
        for s in (data.val, data.test):
            if s is not None and s.embeddings is not None and s.embeddings.shape[1] != dim:
                raise InputError(
                    f"{s.source}: {s.embeddings.shape[1]} features per row, train has {dim}"
                )
        dropout = 0.1 if cfg.dropout is None else cfg.dropout
        head = EmbeddingHead(
            dim, data.names, dropout, hidden=cfg.head_hidden, standardize=cfg.standardize
        )
        if cfg.standardize:
            head.fit_standardizer(data.train.embeddings)
        shape = f"{dim} -> {cfg.head_hidden} -> " if cfg.head_hidden else f"{dim} -> "
        std = "standardised, " if cfg.standardize else ""
        per_column = data.train.features is not None and data.train.features.feature_columns
        kind = "head on features" if per_column else "embedding head"
        return head, None, f"{kind} ({std}{shape}{len(data.names)})"
    if not cfg.model:
        raise ParameterError(
            f"model is required: {describe_paths(cfg.train)} has no {cfg.embedding_column!r} column and no "
            f"feature columns were named, so an encoder must read the {cfg.text_column!r} column",
            param="model",
        )
    if Path(cfg.model).expanduser().is_file():
        raise InputError(
            f"{cfg.model}: is a file, not a model folder (config.json, weights, tokenizer) or a "
            "Hugging Face model name"
        )
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(path, trust_remote_code=cfg.trust_remote_code)
    model = build_encoder_model(
        path, data.names, dropout=cfg.dropout, trust_remote_code=cfg.trust_remote_code
    )
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_length > limit:
        raise ParameterError(
            f"max_length {cfg.max_length} exceeds the model's {limit} positions",
            param="max_length",
        )
    return model, tokenizer, path


def pad_multiple(cfg: TrainConfig, device: torch.device) -> int:
    """The batch width multiple: the option, else 16 when compiling, 8 on a GPU, 1 on CPU.

    A compiled model sees few distinct shapes (each new one compiles or records a graph); 8
    suits the GPU's tensor cores; on CPU padding only costs, and 1 keeps CPU runs as before.
    """
    if cfg.pad_to_multiple_of is not None:
        return int(cfg.pad_to_multiple_of)
    if cfg.compile != "off":
        return 16
    return 8 if device.type == "cuda" else 1


def make_dataset(
    cfg: TrainConfig,
    split: SplitData,
    y: Any,
    tokenizer: Any,
    *,
    device: torch.device | None = None,
    name: str = "",
    progress: bool | None = False,
) -> torch.utils.data.Dataset:
    """Batches of *split* by index: embedding rows, or texts tokenised once up front.

    Texts are tokenised here, before training (:class:`~mlbalance.train.batching.TokenCache`,
    with a progress bar), so a batch is cut by numpy with no tokenising in the loop; on a
    GPU the batches come in pinned memory.
    """
    if split.embeddings is not None:
        return EmbeddingBatches(split.embeddings, y)
    from mlbalance._progress import progress_bar

    device = device or torch.device("cpu")
    bar = progress_bar(
        desc=f"tokenising {name}".strip(), total=split.n_rows, unit="row", enabled=progress
    )
    try:
        cache = TokenCache.build(split.texts, tokenizer, cfg.max_length, progress=bar.update)
    finally:
        bar.close()
    return TokenBatches(cache, y, pad_multiple(cfg, device), pin=device.type == "cuda")


def build_sampler(cfg: TrainConfig, labels: Any, rt: Runtime) -> tuple[Any, dict[str, Any]]:
    """The epoch sampler of *cfg* (sharded over the ranks) and what it does to an epoch.

    The record has the expected rows per epoch (all ranks) against the input rows, and the
    warnings the sampler raised while it was built and drew its first epoch (e.g. a
    repeat-factor threshold that repeats no row): they are repeated in the run's summary.
    """
    n_rows = labels.n_rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cfg.sampler == "repeat-factor":
            from mlbalance.samplers import RepeatFactorSampler

            sampler: Any = RepeatFactorSampler(
                labels, threshold=cfg.rfs_threshold,  # a number or "auto"
                power=cfg.rfs_power, shuffle=True,
                seed=cfg.seed, num_replicas=rt.world, rank=rt.rank,
            )  # fmt: skip
            expected = float(sampler.expected_epoch_length)
        elif cfg.sampler == "class-aware":
            from mlbalance.samplers import ClassAwareSampler

            sampler = ClassAwareSampler(labels, seed=cfg.seed, num_replicas=rt.world, rank=rt.rank)
            expected = float(sampler.epoch_length(0))
        else:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(
                range(n_rows),  # type: ignore[arg-type]  # any sized sequence works
                num_replicas=rt.world, rank=rt.rank, shuffle=True, seed=cfg.seed,
            )  # fmt: skip
            expected = float(n_rows)
        sampler.set_epoch(0)
        len(sampler)
    info: dict[str, Any] = {
        "name": cfg.sampler,
        "input_rows": int(n_rows),
        "rows_per_epoch": expected,
        "growth": expected / max(n_rows, 1),
        "warnings": [str(w.message) for w in caught],
    }
    if cfg.sampler == "repeat-factor":
        info["threshold"] = getattr(sampler, "threshold", cfg.rfs_threshold)  # "auto" resolved
        info["threshold_given"] = cfg.rfs_threshold
        info["power"] = cfg.rfs_power
        if not info["warnings"] and info["growth"] == 1.0:
            info["warnings"].append(
                f"repeat-factor threshold {info['threshold']} repeats no row: every label is on "
                "more rows than the threshold asks for, so the epoch is a plain shuffle"
            )
    return sampler, info


def epoch_order(sampler: Any, epoch: int) -> np.ndarray:
    """The row indices of *epoch* for this rank, in order."""
    sampler.set_epoch(epoch)
    if hasattr(sampler, "epoch_indices"):
        return np.asarray(sampler.epoch_indices(), dtype=np.int64)
    return np.fromiter(iter(sampler), dtype=np.int64)


def lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up over *warmup_steps*, then linear decay to 0 at *total_steps*."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def build_optimizer(
    cfg: TrainConfig, model: torch.nn.Module, steps_per_epoch: int, device: torch.device
) -> tuple[torch.optim.Optimizer, Any, Any]:
    """AdamW (head and encoder groups, no decay on biases and norms), schedule, grad scaler."""
    from mlbalance.train.runtime import autocast_dtype

    groups = parameter_groups(model, lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    try:  # the fused kernel (CPU and CUDA in recent torch), as HF Trainer's default optimizer
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, warmup))
    fp16 = autocast_dtype(cfg.precision, device) == torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    return optimizer, scheduler, scaler


def steps_per_epoch(cfg: TrainConfig, sampler: Any) -> int:
    """Optimizer steps in one epoch of this rank (epoch 0's length)."""
    batches = math.ceil(len(sampler) / cfg.batch_size)
    return max(1, math.ceil(batches / cfg.grad_accum))
