"""The training loop of ``mlbalance train``: single process, or DDP under ``torchrun``.

One call, :func:`train`, does the whole run:

1. read train and val (and test) with one label vocabulary (train's; labels val/test have
   that train never saw are reported and left out of the metrics);
2. build the model (an encoder with dropout + linear head, or a head on embeddings), freeze
   all but ``--train-last-layers``, set the head bias to the label priors;
3. train with AdamW (head and encoder learning rates; no decay on biases and LayerNorm),
   linear warm-up then linear decay, clipping, accumulation, autocast on GPU, the chosen loss
   (:func:`mlbalance.train.losses.build_loss`) and sampler (none / repeat-factor /
   class-aware, sharded per rank);
4. evaluate on val after every epoch (loss and :func:`mlbalance.metrics.multilabel_metrics`),
   keep the best checkpoint by ``--metric``, stop after ``--patience`` epochs without gain;
5. tune a threshold per label on val (:func:`mlbalance.train.thresholds.tune_thresholds`),
   evaluate val and test with them, and write the output folder (rank 0 only).

The loop stays lean: the loss is summed on the device and read (one sync) only every
``--log-every`` steps; scores are copied to the host only in evaluation.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.errors import InputError, ParameterError
from mlbalance.train.config import METRICS_MINIMISED, TrainConfig
from mlbalance.train.data import (
    EmbeddingBatches,
    SplitData,
    TextBatches,
    batch_indices,
    detect_embedding,
    load_split,
    loader,
)
from mlbalance.train.model import (
    EmbeddingHead,
    build_encoder_model,
    freeze_encoder_layers,
    init_prior_bias,
    load_tokenizer,
    parameter_groups,
    quiet_transformers,
    resolve_model_path,
)
from mlbalance.train.predict import (
    LABEL_COUNTS,
    METRICS,
    THRESHOLDS,
    TRAINING_ARGS,
    align_labels,
    autocast_dtype,
    evaluate_scores,
    logits_of,
    mean_loss,
    predict_logits,
    resolve_device,
    sigmoid,
)

__all__ = ["TrainResult", "train"]

Log = Callable[[str], None]


# ----------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def min_int(self, value: int) -> int:
        if self.world == 1:
            return value
        t = torch.tensor([value], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return int(t.item())

    def sum_float(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _setup_distributed(device_name: str) -> _Dist:
    """Join the process group ``torchrun`` set up (NCCL on GPU, gloo on CPU), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda" and world > 1 and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        owns = True
    return _Dist(rank=rank, world=world, device=device, owns_group=owns)


# ----------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What :func:`train` returns (rank 0 has the complete picture; all ranks agree)."""

    out: Path
    names: list[str]
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float
    metrics: dict[str, Any]
    fallback: dict[str, str]
    stopped_early: bool
    seconds: float
    train_samples_per_s: float
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--json`` writes)."""
        return {
            "out": str(self.out),
            "labels": len(self.names),
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 2),
            "train_samples_per_s": round(self.train_samples_per_s, 1),
            "history": self.history,
            "metrics": self.metrics,
            "threshold_fallback": self.fallback,
            "data": self.data,
        }


# ----------------------------------------------------------------------------- helpers
def _names_diff(old: list[str], new: list[str]) -> str:
    only_old = [n for n in old if n not in set(new)]
    only_new = [n for n in new if n not in set(old)]
    if not only_old and not only_new:
        return "same labels in a different order"
    parts = []
    if only_old:
        parts.append(
            f"only in the checkpoint: {', '.join(only_old[:5])}"
            + (f" (+{len(only_old) - 5})" if len(only_old) > 5 else "")
        )
    if only_new:
        parts.append(
            f"only in the data: {', '.join(only_new[:5])}"
            + (f" (+{len(only_new) - 5})" if len(only_new) > 5 else "")
        )
    return "; ".join(parts)


def _make_sampler(cfg: TrainConfig, labels: Any, n_rows: int, dist: _Dist) -> Any:
    if cfg.sampler == "repeat-factor":
        from mlbalance.samplers import RepeatFactorSampler

        return RepeatFactorSampler(
            labels,
            threshold=cfg.rfs_threshold,
            power=cfg.rfs_power,
            shuffle=True,
            seed=cfg.seed,
            num_replicas=dist.world,
            rank=dist.rank,
        )
    if cfg.sampler == "class-aware":
        from mlbalance.samplers import ClassAwareSampler

        return ClassAwareSampler(labels, seed=cfg.seed, num_replicas=dist.world, rank=dist.rank)
    from torch.utils.data import DistributedSampler

    return DistributedSampler(
        range(n_rows),  # type: ignore[arg-type]  # any sized sequence works
        num_replicas=dist.world,
        rank=dist.rank,
        shuffle=True,
        seed=cfg.seed,
    )


def _epoch_order(sampler: Any, epoch: int) -> np.ndarray:
    sampler.set_epoch(epoch)
    if hasattr(sampler, "epoch_indices"):
        return np.asarray(sampler.epoch_indices(), dtype=np.int64)
    return np.fromiter(iter(sampler), dtype=np.int64)


def _lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _metric_value(name: str, val_loss: float, metrics: dict[str, Any]) -> float:
    if name == "val_loss":
        return val_loss
    value = metrics.get(name)
    if name in metrics and value is None:
        return math.nan  # undefined this epoch (e.g. no tail label in val): never "better"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        numeric = sorted(
            k
            for k, v in metrics.items()
            if (isinstance(v, (int, float)) and not isinstance(v, bool))
            or (v is None and k.startswith(("micro_", "macro_")))
        )
        raise ParameterError(
            f"--metric {name!r} is not a validation metric; choose one of "
            f"val_loss, {', '.join(numeric)}"
        )
    return float(value)


def _check_metric_name(name: str) -> None:
    """Fail before training, not after the first epoch, on an unknown ``--metric``."""
    if name in METRICS_MINIMISED:
        return
    from mlbalance.metrics import multilabel_metrics

    probe = multilabel_metrics(
        np.array([[1, 0], [0, 1], [1, 1]], dtype=np.uint8),
        np.array([[0.9, 0.2], [0.1, 0.7], [0.6, 0.4]]),
        0.5,
        train_counts=np.array([200, 5]),
        label_names=["a", "b"],
    )
    _metric_value(name, 0.0, probe)


def _check_output(cfg: TrainConfig) -> None:
    from mlbalance.io import check_not_input

    out = Path(cfg.out)
    check_not_input(out, [p for p in (cfg.train, cfg.val, cfg.test) if p])
    if out.is_file():
        raise ParameterError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise ParameterError(f"--out {out} is not empty; pass --overwrite to replace it")


def _unseen(split: SplitData, names: list[str], train_counts: np.ndarray) -> dict[str, int]:
    y, extra = align_labels(split, names)
    unseen = dict(extra)
    in_split = np.asarray(y.sum(axis=0)).ravel()
    for j in np.flatnonzero((train_counts == 0) & (in_split > 0)):
        unseen[names[j]] = int(in_split[j])
    return unseen


# ----------------------------------------------------------------------------- checkpoints
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_model

    save_model(_unwrap(model), str(path))


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_model

    load_model(_unwrap(model), str(path), device=str(next(model.parameters()).device))


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def _save_checkpoint(
    ckpt: Path,
    name: str,
    model: torch.nn.Module,
    state: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``ckpt/name`` atomically: weights (safetensors), state (JSON), optimizer (.pt)."""
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_weights(model, tmp / "model.safetensors")
    if extra is not None:
        torch.save(extra, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    _replace_dir(tmp, ckpt / name)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((path / "state.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"--resume: cannot read the checkpoint {path} ({exc})") from None


@dataclass
class _Splits:
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


def _read_splits(cfg: TrainConfig, say: Log) -> _Splits:
    """Read train, val (and test); report labels val/test have that train never saw."""
    spec = cfg.label_spec()
    use_embedding = detect_embedding(cfg.train, cfg.embedding_column)
    emb_col = cfg.embedding_column if use_embedding else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_split = load_split(
            cfg.train, spec=spec, text_column=cfg.text_column, embedding_column=emb_col
        )
        names = list(train_split.labels.names)
        val_split = load_split(
            cfg.val,
            spec=spec,
            vocabulary=names,
            text_column=cfg.text_column,
            embedding_column=emb_col,
        )
        test_split = (
            load_split(
                cfg.test,
                spec=spec,
                vocabulary=names,
                text_column=cfg.text_column,
                embedding_column=emb_col,
            )
            if cfg.test
            else None
        )
    for w in caught:
        say(f"warning: {w.message}")
    train_counts = train_split.labels.counts().astype(np.int64)
    val_y, _ = align_labels(val_split, names)
    unseen = {"val": _unseen(val_split, names, train_counts)}
    if test_split is not None:
        unseen["test"] = _unseen(test_split, names, train_counts)
    for which, labels_ in unseen.items():
        if labels_:
            say(
                f"warning: {which} has {len(labels_)} label(s) that train never saw (left out "
                f"of the metrics): " + ", ".join(f"{k} ({v})" for k, v in list(labels_.items())[:8])
            )
    return _Splits(
        train_split,
        val_split,
        test_split,
        names,
        train_counts,
        train_split.labels.matrix.tocsr(),
        val_y,
        unseen,
        use_embedding,
    )


def _build_model(cfg: TrainConfig, data: _Splits) -> tuple[torch.nn.Module, Any, str]:
    """``(model, tokenizer or None, description)``: an encoder classifier or an embedding head."""
    if data.embedding:
        assert data.train.embeddings is not None
        dim = data.train.embeddings.shape[1]
        for s in (data.val, data.test):
            if s is not None and s.embeddings is not None and s.embeddings.shape[1] != dim:
                raise InputError(
                    f"{s.source}: embeddings of width {s.embeddings.shape[1]}, train has {dim}"
                )
        head = EmbeddingHead(
            dim,
            data.names,
            0.1 if cfg.dropout is None else cfg.dropout,
            hidden=cfg.head_hidden,
            standardize=cfg.standardize,
        )
        if cfg.standardize:
            head.fit_standardizer(data.train.embeddings)
        shape = f"{dim} -> {cfg.head_hidden} -> " if cfg.head_hidden else f"{dim} -> "
        std = "standardised, " if cfg.standardize else ""
        return head, None, f"embedding head ({std}{shape}{len(data.names)})"
    if not cfg.model:
        raise ParameterError(
            f"--model is required: {cfg.train} has no "
            f"{cfg.embedding_column!r} column, so an encoder must read "
            f"the {cfg.text_column!r} column"
        )
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(path, trust_remote_code=cfg.trust_remote_code)
    model = build_encoder_model(
        path, data.names, dropout=cfg.dropout, trust_remote_code=cfg.trust_remote_code
    )
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_length > limit:
        raise ParameterError(f"--max-length {cfg.max_length} exceeds the model's {limit} positions")
    return model, tokenizer, path


def _restore(
    last: Path,
    cfg: TrainConfig,
    names: list[str],
    use_embedding: bool,
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    device: torch.device,
) -> dict[str, Any]:
    """Load the checkpoint *last* into the model, optimizer, scheduler, scaler and RNG.

    Refuses a checkpoint of another label vocabulary or input kind. Returns its state dict
    (epoch, step, batch in epoch, best so far, history).
    """
    if not (last / "state.json").is_file():
        raise ParameterError(
            f"--resume: no checkpoint in {last.parent} (expected {last / 'state.json'})"
        )
    state = _read_state(last)
    if list(state.get("labels", [])) != names:
        raise ParameterError(
            f"--resume: the label vocabulary of the checkpoint in {last} "
            f"({len(state.get('labels', []))} labels) does not match the training data "
            f"{cfg.train} ({len(names)} labels): {_names_diff(state.get('labels', []), names)}"
        )
    kind = "embedding" if use_embedding else "text"
    if state.get("mode") != kind:
        raise ParameterError(
            f"--resume: the checkpoint in {last} was trained on "
            f"{state.get('mode')} input, this data is {kind} input"
        )
    try:
        _load_weights(model, last / "model.safetensors")
    except RuntimeError as exc:  # other head shape or standardisation than this run
        saved = state.get("config", {})
        raise ParameterError(
            f"--resume: the model in {last} does not fit this run's model options (checkpoint: "
            f"--head-hidden {saved.get('head_hidden', 0)}, standardize "
            f"{saved.get('standardize', False)}; this run: --head-hidden {cfg.head_hidden}, "
            f"standardize {cfg.standardize}): {str(exc).splitlines()[0][:200]}"
        ) from None
    extra = torch.load(last / "optimizer.pt", map_location=device, weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    scaler.load_state_dict(extra["scaler"])
    torch.set_rng_state(extra["rng"].cpu())
    return state


# ----------------------------------------------------------------------------- the run
def train(cfg: TrainConfig, *, log: Log | None = None, progress: bool | None = None) -> TrainResult:
    """Train a model as *cfg* says and write the output folder.

    Parameters
    ----------
    cfg : TrainConfig
        Every option (see ``mlbalance train --help``).
    log : callable, optional
        Receives one line per event (epoch results, warnings); rank 0 only. Default: stderr.
    progress : bool, optional
        Force progress bars on or off (default: on when stderr is a terminal).

    Returns
    -------
    TrainResult
    """
    dist = _setup_distributed(cfg.device)
    try:
        return _train(cfg, dist, log, progress)
    finally:
        dist.close()


def _train(cfg: TrainConfig, dist: _Dist, log: Log | None, progress: bool | None) -> TrainResult:
    from mlbalance._progress import progress_bar
    from mlbalance.train.losses import build_loss

    started = time.perf_counter()

    def say(line: str) -> None:
        if dist.main:
            (log or (lambda s: print(s, file=sys.stderr)))(line)

    if dist.main:
        _check_output(cfg)
    _check_metric_name(cfg.metric)
    torch.manual_seed(cfg.seed)
    ckpt = cfg.checkpoint_path
    if not cfg.resume and (ckpt / "last" / "state.json").exists():
        if not cfg.overwrite:
            raise ParameterError(
                f"checkpoint folder {ckpt} holds a run; pass --resume to "
                "continue it or --overwrite to start again"
            )
        dist.barrier()
        if dist.main:
            shutil.rmtree(ckpt, ignore_errors=True)
        dist.barrier()

    data = _read_splits(cfg, say)
    train_split, val_split, test_split = data.train, data.val, data.test
    names, train_counts, n_rows = data.names, data.counts, data.train.n_rows
    train_y, val_y, unseen, use_embedding = data.train_y, data.val_y, data.unseen, data.embedding
    model, tokenizer, model_source = _build_model(cfg, data)
    trainable = freeze_encoder_layers(model, cfg.train_last_layers)
    if cfg.prior_bias:
        init_prior_bias(model, train_counts, n_rows)
    model.to(dist.device)

    try:
        loss_fn = build_loss(cfg.loss, label_counts=train_counts, n_rows=n_rows, **cfg.loss_params)
    except TypeError as exc:
        raise ParameterError(f"--loss {cfg.loss}: bad --loss-param ({exc})") from None
    loss_fn = loss_fn.to(dist.device)

    def make_dataset(split: SplitData, y: Any) -> torch.utils.data.Dataset:
        if use_embedding:
            assert split.embeddings is not None
            return EmbeddingBatches(split.embeddings, y)
        return TextBatches(split.texts, y, tokenizer, cfg.max_length)

    train_ds = make_dataset(train_split, train_y)
    val_ds = make_dataset(val_split, None)
    sampler = _make_sampler(cfg, train_split.labels, n_rows, dist)

    # ---- optimisation
    groups = parameter_groups(model, lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    try:  # the fused kernel (CPU and CUDA in recent torch), as HF Trainer's default optimizer
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    batches_per_epoch = math.ceil(len(sampler) / cfg.batch_size)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total_steps, warmup))
    amp_dtype = autocast_dtype(cfg.precision, dist.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    ddp_model: torch.nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )

    # ---- state (and resume)
    epoch, step, skip_batches = 0, 0, 0
    best_value, best_epoch, bad_epochs = math.nan, -1, 0
    history: list[dict[str, Any]] = []
    train_truncated = 0
    if cfg.resume:
        state = _restore(
            ckpt / "last",
            cfg,
            names,
            use_embedding,
            model,
            optimizer,
            scheduler,
            scaler,
            dist.device,
        )
        epoch, step, skip_batches = state["epoch"], state["step"], state["batch_in_epoch"]
        best_value, best_epoch = state["best_value"], state["best_epoch"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        train_truncated = state.get("train_truncated", 0)
        say(f"resumed from {ckpt / 'last'}: epoch {epoch + 1}, step {step}")

    def checkpoint(name: str, batch_in_epoch: int, epoch_done: int) -> None:
        if not dist.main:
            return
        state = {
            "labels": names,
            "mode": "embedding" if use_embedding else "text",
            "epoch": epoch_done,
            "step": step,
            "batch_in_epoch": batch_in_epoch,
            "best_value": best_value,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "history": history,
            "train_truncated": train_truncated,
            "config": cfg.to_dict(),
        }
        extra = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        _save_checkpoint(ckpt, name, model, state, extra)

    def evaluate(split: SplitData, ds: torch.utils.data.Dataset) -> tuple[np.ndarray, int]:
        return predict_logits(
            model,
            ds,
            split.n_rows,
            batch_size=cfg.eval_batch_size,
            device=dist.device,
            amp_dtype=amp_dtype,
            rank=dist.rank,
            world=dist.world,
            num_workers=cfg.num_workers,
        )

    say(
        f"training {model_source} on {n_rows:,} rows, {len(names)} labels "
        f"({trainable:,} trainable parameters), loss {cfg.loss}, sampler {cfg.sampler}, "
        f"{dist.world} process(es) on {dist.device.type}"
    )
    higher_better = cfg.metric not in METRICS_MINIMISED
    stopped_early = False
    train_seconds, train_samples = 0.0, 0
    pin = dist.device.type == "cuda"
    ddp_model.train()
    while epoch < cfg.epochs and (cfg.max_steps is None or step < cfg.max_steps):
        order = _epoch_order(sampler, epoch)
        batches = batch_indices(order, cfg.batch_size)
        n_batches = dist.min_int(len(batches))  # equal on every rank, or DDP would hang
        batches = batches[skip_batches:n_batches]
        bar = progress_bar(
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            total=n_batches,
            initial=skip_batches,
            unit="batch",
            enabled=False if not dist.main else progress,
        )
        running = torch.zeros((), device=dist.device)
        logged_batches, epoch_loss_sum, epoch_batches = 0, 0.0, 0
        t_epoch = time.perf_counter()
        seen_epoch = 0
        t_log, seen_log = t_epoch, 0
        batch_no = skip_batches
        for batch in loader(train_ds, batches, num_workers=cfg.num_workers, pin_memory=pin):
            train_truncated += int(batch["n_truncated"]) if epoch == 0 else 0
            labels = batch["labels"].to(dist.device, non_blocking=True)
            inputs = {
                k: v.to(dist.device, non_blocking=True)
                for k, v in batch.items()
                if k not in ("labels", "n_truncated", "index")
            }
            batch_no += 1
            boundary = batch_no % cfg.grad_accum == 0 or batch_no == n_batches
            sync = dist.world == 1 or boundary
            no_sync: Any = getattr(ddp_model, "no_sync", None)
            ctx = no_sync() if not sync and no_sync is not None else _null()
            with ctx:
                with torch.autocast(
                    dist.device.type,
                    dtype=amp_dtype or torch.float32,
                    enabled=amp_dtype is not None,
                ):
                    logits = logits_of(ddp_model(**inputs))
                loss = loss_fn(logits.float(), labels)
                scaler.scale(loss / cfg.grad_accum).backward()
            running += loss.detach()
            logged_batches += 1
            n_in = len(batch["index"])
            seen_epoch += n_in
            seen_log += n_in
            if boundary:
                if cfg.max_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if step % cfg.log_every == 0:
                    value = float(running.item()) / logged_batches  # the one sync per interval
                    epoch_loss_sum += value * logged_batches
                    epoch_batches += logged_batches
                    running.zero_()
                    logged_batches = 0
                    now = time.perf_counter()
                    bar.set_postfix(
                        loss=f"{value:.4f}", rows_s=f"{seen_log * dist.world / (now - t_log):.0f}"
                    )
                    t_log, seen_log = now, 0
                if cfg.save_steps and step % cfg.save_steps == 0:
                    checkpoint("last", batch_no, epoch)
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    bar.update(1)
                    break
            bar.update(1)
        bar.close()
        if logged_batches:
            epoch_loss_sum += float(running.item())
            epoch_batches += logged_batches
        elapsed = time.perf_counter() - t_epoch
        train_seconds += elapsed
        train_samples += seen_epoch * dist.world
        skip_batches = 0

        # ---- evaluate
        val_logits, _ = evaluate(val_split, val_ds)
        val_loss = mean_loss(loss_fn.cpu(), val_logits, val_y)
        loss_fn.to(dist.device)
        metrics = evaluate_scores(
            val_y, sigmoid(val_logits), 0.5, names=names, train_counts=train_counts, per_label=False
        )
        value = _metric_value(cfg.metric, val_loss, metrics)
        improved = best_epoch < 0 or (value > best_value if higher_better else value < best_value)
        train_loss = dist.sum_float(epoch_loss_sum / max(epoch_batches, 1)) / dist.world
        record = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": round(train_loss, 6),
            "val_loss": round(val_loss, 6),
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "samples_per_s": round(seen_epoch * dist.world / max(elapsed, 1e-9), 1),
            "best": improved,
        }
        history.append(record)
        if improved:
            best_value, best_epoch, bad_epochs = value, epoch + 1, 0
            if dist.main:
                _save_checkpoint(
                    ckpt, "best", model, {"epoch": epoch + 1, cfg.metric: value, "labels": names}
                )
        else:
            bad_epochs += 1
        say(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
            f"{cfg.metric} {value:.4f}{' (best)' if improved else ''}, "
            f"{record['samples_per_s']:.0f} rows/s"
        )
        epoch += 1
        checkpoint("last", 0, epoch)
        dist.barrier()
        if cfg.patience is not None and bad_epochs >= cfg.patience:
            stopped_early = True
            say(f"early stop: no gain in {cfg.metric} for {cfg.patience} epoch(s)")
            break

    # ---- best model, thresholds, final metrics
    dist.barrier()
    if (ckpt / "best" / "model.safetensors").is_file():
        _load_weights(model, ckpt / "best" / "model.safetensors")
    return _finish(
        cfg,
        dist,
        model,
        tokenizer,
        names,
        train_counts,
        n_rows,
        loss_fn,
        evaluate,
        val_split,
        val_ds,
        val_y,
        test_split,
        make_dataset,
        unseen,
        history,
        best_epoch,
        best_value,
        stopped_early,
        started,
        train_seconds,
        train_samples,
        train_truncated,
        use_embedding,
        train_split,
        say,
    )


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _finish(
    cfg: TrainConfig,
    dist: _Dist,
    model: torch.nn.Module,
    tokenizer: Any,
    names: list[str],
    train_counts: np.ndarray,
    n_rows: int,
    loss_fn: Any,
    evaluate: Callable[..., tuple[np.ndarray, int]],
    val_split: SplitData,
    val_ds: Any,
    val_y: Any,
    test_split: SplitData | None,
    make_dataset: Callable[..., Any],
    unseen: dict[str, dict[str, int]],
    history: list[dict[str, Any]],
    best_epoch: int,
    best_value: float,
    stopped_early: bool,
    started: float,
    train_seconds: float,
    train_samples: int,
    train_truncated: int,
    use_embedding: bool,
    train_split: SplitData,
    say: Log,
) -> TrainResult:
    from mlbalance.thresholds import tune_thresholds

    val_logits, val_trunc = evaluate(val_split, val_ds)
    val_scores = sigmoid(val_logits)
    dense_val = val_y.toarray().astype(np.uint8)
    tuned = tune_thresholds(
        dense_val,
        val_scores,
        mode=cfg.threshold_mode,
        target_recall=cfg.target_recall,
        min_positives=cfg.min_positives,
        smoothing=cfg.threshold_smoothing,
        fallback=cfg.threshold_fallback,
    )
    thresholds = np.asarray(tuned.thresholds, dtype=np.float64)
    fallback = _fallback_dict(tuned, names)
    if fallback:
        say(f"thresholds: {tuned.summary()}; see {THRESHOLDS}")
    metrics: dict[str, Any] = {
        "val": evaluate_scores(
            val_y, val_scores, thresholds, names=names, train_counts=train_counts
        ),
        "val_at_0.5": evaluate_scores(
            val_y, val_scores, 0.5, names=names, train_counts=train_counts
        ),
        "val_loss": mean_loss(loss_fn.cpu(), val_logits, val_y),
    }
    loss_fn.to(dist.device)
    test_trunc = 0
    if test_split is not None:
        test_y, _ = align_labels(test_split, names)
        test_logits, test_trunc = evaluate(test_split, make_dataset(test_split, None))
        test_scores = sigmoid(test_logits)
        metrics["test"] = evaluate_scores(
            test_y, test_scores, thresholds, names=names, train_counts=train_counts
        )
        metrics["test_at_0.5"] = evaluate_scores(
            test_y, test_scores, 0.5, names=names, train_counts=train_counts
        )
    data = {
        "train_rows": n_rows,
        "val_rows": val_split.n_rows,
        "test_rows": test_split.n_rows if test_split is not None else 0,
        "empty_text": {
            "train": train_split.stats.get("empty_text", 0),
            "val": val_split.stats.get("empty_text", 0),
        },
        "truncated": {"train_first_epoch": train_truncated, "val": val_trunc, "test": test_trunc},
        "max_length": None if use_embedding else cfg.max_length,
        "unseen_labels": unseen,
    }
    seconds = time.perf_counter() - started
    result = TrainResult(
        out=Path(cfg.out),
        names=names,
        history=history,
        best_epoch=best_epoch,
        best_value=best_value,
        metrics=metrics,
        fallback=fallback,
        stopped_early=stopped_early,
        seconds=seconds,
        train_samples_per_s=train_samples / max(train_seconds, 1e-9),
        data=data,
    )
    if dist.main:
        _write_output(
            cfg, model, tokenizer, names, train_counts, n_rows, tuned, result, use_embedding
        )
        if not cfg.keep_checkpoints:
            shutil.rmtree(cfg.checkpoint_path, ignore_errors=True)
    dist.barrier()
    return result


def _fallback_dict(tuned: Any, names: list[str]) -> dict[str, str]:
    """``{label: reason}`` of the labels whose threshold fell back."""
    fb = getattr(tuned, "fallback", None)
    if fb is None:
        return {}
    if isinstance(fb, dict):
        return {
            str(names[k]) if isinstance(k, (int, np.integer)) else str(k): str(v)
            for k, v in fb.items()
        }
    arr = np.asarray(fb)
    reasons = getattr(tuned, "reasons", None)
    out = {}
    for j in np.flatnonzero(arr.astype(bool)) if arr.dtype != object else np.flatnonzero(arr):
        reason = (
            arr[j]
            if arr.dtype == object
            else (reasons[j] if reasons is not None else "too few positives")
        )
        out[names[j]] = str(reason)
    return out


def _write_output(
    cfg: TrainConfig,
    model: torch.nn.Module,
    tokenizer: Any,
    names: list[str],
    train_counts: np.ndarray,
    n_rows: int,
    tuned: Any,
    result: TrainResult,
    use_embedding: bool,
) -> None:
    from mlbalance.io import output_dir

    with output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        model = _unwrap(model).cpu()
        if isinstance(model, EmbeddingHead):
            model.save(tmp, embedding_column=cfg.embedding_column)
        else:
            with quiet_transformers():
                model.save_pretrained(tmp)  # type: ignore[operator]
                tokenizer.save_pretrained(tmp)
        thr = tuned.to_json(names)
        (tmp / THRESHOLDS).write_text(
            thr if isinstance(thr, str) else json.dumps(thr, indent=1), encoding="utf-8"
        )
        (tmp / LABEL_COUNTS).write_text(
            json.dumps(
                {
                    "n_rows": n_rows,
                    "counts": {n: int(c) for n, c in zip(names, train_counts, strict=True)},
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        args = cfg.to_dict()
        args.update({"mode": "embedding" if use_embedding else "text", "labels": names})
        (tmp / TRAINING_ARGS).write_text(json.dumps(args, indent=1), encoding="utf-8")
        (tmp / METRICS).write_text(
            json.dumps(_jsonable(result.to_dict()), indent=1), encoding="utf-8"
        )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
