"""``mlbalance train`` as one call, :func:`train`: single process, or DDP under ``torchrun``.

1. read train and val (and test) with one label vocabulary (train's; labels val/test have
   that train never saw are reported and left out of the metrics);
2. build the model (an encoder with dropout + linear head, or a head on embeddings), freeze
   all but ``train_last_layers``, set the head bias to the label priors;
3. train (:class:`~mlbalance.train.loop.Loop`) with AdamW (head and encoder learning rates; no
   decay on biases and LayerNorm), linear warm-up then decay, clipping, accumulation,
   autocast on GPU, the chosen loss (:func:`mlbalance.train.losses.build_loss`) and sampler,
   evaluating on val after every epoch, keeping the best weights by ``metric`` and stopping
   after ``patience`` epochs without gain; checkpoints make the run resumable exactly;
4. tune a threshold per label on val (:func:`mlbalance.thresholds.tune_thresholds`),
   evaluate val and test with them, and write the model folder
   (:func:`mlbalance.train.model_folder.write_model_folder`, rank 0 only).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.errors import MlbalanceError, ParameterError
from mlbalance.metrics import evaluate_scores
from mlbalance.train.build import (
    RunData,
    build_model,
    build_optimizer,
    build_sampler,
    check_output,
    make_dataset,
    read_run_data,
    steps_per_epoch,
)
from mlbalance.train.checkpoint import STATE, TrainState, load_checkpoint
from mlbalance.train.config import TrainConfig
from mlbalance.train.data import align_labels, describe_paths
from mlbalance.train.inference import sigmoid
from mlbalance.train.loop import Loop
from mlbalance.train.model import freeze_encoder_layers, init_prior_bias
from mlbalance.train.model_folder import TrainResult, label_layout, write_model_folder
from mlbalance.train.runtime import Runtime, autocast_dtype, compile_for_training, running
from mlbalance.train.weights import load_safetensors_into

__all__ = ["TrainResult", "train"]

Log = Callable[[str], None]


def train(cfg: TrainConfig, *, log: Log | None = None, progress: bool | None = None) -> TrainResult:
    """Train a model as *cfg* says and write the model folder ``cfg.out``.

    Parameters
    ----------
    cfg : TrainConfig
        Every option, recipe resolved (see ``mlbalance train --help``).
    log : callable, optional
        Receives one line per event (epoch results, warnings); rank 0 only. Default: stderr.
    progress : bool, optional
        Force progress bars on or off (default: on when stderr is a terminal).

    Returns
    -------
    TrainResult
    """
    with running(cfg.device) as rt:
        return _train(cfg, rt, log, progress)


@dataclass
class _Run:
    """What the end of a run needs: the parts built at its start."""

    cfg: TrainConfig
    rt: Runtime
    data: RunData
    model: torch.nn.Module
    tokenizer: Any
    loop: Loop
    sampler: dict[str, Any]
    say: Log


def _say(rt: Runtime, log: Log | None) -> Log:
    def say(line: str) -> None:
        if rt.is_main:
            (log or (lambda s: print(s, file=sys.stderr)))(line)

    return say


def _prepare_checkpoints(cfg: TrainConfig, rt: Runtime) -> None:
    """Refuse to start over a run's checkpoints unless resuming or overwriting."""
    ckpt = cfg.checkpoint_path
    if cfg.resume or not (ckpt / "last" / STATE).exists():
        return
    if not cfg.overwrite:
        raise ParameterError(
            f"checkpoint folder {ckpt} holds a run; pass resume=True to continue it or "
            "overwrite=True to start again",
            param=("resume", "overwrite"),
        )
    rt.barrier()
    if rt.is_main:
        shutil.rmtree(ckpt, ignore_errors=True)
    rt.barrier()


def _say_recipe(cfg: TrainConfig, say: Log) -> None:
    from mlbalance.train.config import RECIPES

    presets = RECIPES[cfg.recipe]
    if not presets:
        return
    applied = cfg.from_recipe()
    if applied:
        say(f"recipe {cfg.recipe}: " + ", ".join(f"{k}={v}" for k, v in applied.items()))
    else:
        say(
            f"warning: recipe {cfg.recipe} changes nothing: every option it sets "
            f"({', '.join(presets)}) was given explicitly"
        )


def _train(cfg: TrainConfig, rt: Runtime, log: Log | None, progress: bool | None) -> TrainResult:
    from mlbalance.train.losses import build_loss

    started = time.perf_counter()
    say = _say(rt, log)
    if rt.is_main:
        check_output(cfg)
    torch.manual_seed(cfg.seed)
    _prepare_checkpoints(cfg, rt)
    _say_recipe(cfg, say)
    data = read_run_data(cfg, say)
    model, tokenizer, source = build_model(cfg, data)
    trainable = freeze_encoder_layers(model, cfg.train_last_layers)
    if cfg.prior_bias:
        init_prior_bias(model, data.counts, data.train.n_rows)
    model.to(rt.device)
    loss_fn = build_loss(
        cfg.loss, label_counts=data.counts, n_rows=data.train.n_rows, **cfg.loss_params
    ).to(rt.device)
    shown = progress if rt.is_main else False
    train_ds = make_dataset(
        cfg, data.train, data.train_y, tokenizer, device=rt.device, name="train", progress=shown
    )
    val_ds = make_dataset(
        cfg, data.val, None, tokenizer, device=rt.device, name="val", progress=shown
    )
    sampler, sampler_info = build_sampler(cfg, data.train.labels, rt)
    for warning in sampler_info["warnings"]:
        say(f"warning: {warning}")
    per_epoch = steps_per_epoch(cfg, sampler)
    optimizer, scheduler, scaler = build_optimizer(cfg, model, per_epoch, rt.device)
    train_model: torch.nn.Module = model
    if rt.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [rt.device.index] if rt.device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    train_model = compile_for_training(train_model, cfg.compile)  # evaluation stays eager
    state = TrainState(labels=data.names, mode=data.mode, config=cfg.to_dict())
    if cfg.resume:
        state = load_checkpoint(
            cfg.checkpoint_path / "last", model, optimizer=optimizer, scheduler=scheduler,
            scaler=scaler, labels=data.names, mode=data.mode, options=cfg.to_dict(),
            data=describe_paths(cfg.train),
        )  # fmt: skip
        say(
            f"resumed from {cfg.checkpoint_path / 'last'}: epoch {state.epoch + 1}, step {state.step}"
        )
    planned = cfg.epochs
    if cfg.max_steps is not None:
        planned = min(cfg.epochs, max(1, math.ceil(cfg.max_steps / per_epoch)))
    loop = Loop(
        cfg=cfg, rt=rt, model=model, train_model=train_model, loss_fn=loss_fn,
        optimizer=optimizer, scheduler=scheduler, scaler=scaler,
        amp_dtype=autocast_dtype(cfg.precision, rt.device), sampler=sampler,
        train_ds=train_ds, val_ds=val_ds,
        val_y=data.val_y, train_counts=data.counts, state=state,
        checkpoints=cfg.checkpoint_path, say=say, progress=progress, planned_epochs=planned,
    )  # fmt: skip
    say(
        f"training {source} on {data.train.n_rows:,} rows, {len(data.names)} labels "
        f"({trainable:,} trainable parameters), loss {cfg.loss}, sampler {cfg.sampler}, "
        f"{rt.world} process(es) on {rt.device.type}"
    )
    stopped_early = loop.fit()
    rt.barrier()
    best = cfg.checkpoint_path / "best" / "model.safetensors"
    if best.is_file():
        load_safetensors_into(model, best)
    run = _Run(cfg, rt, data, model, tokenizer, loop, sampler_info, say)
    if cfg.crt_epochs:
        sampler_info["crt"] = _retrain_classifier(run, train_ds, loss_fn)
    return _finish(run, stopped_early, started)


def _retrain_classifier(run: _Run, train_ds: Any, loss_fn: torch.nn.Module) -> dict[str, Any]:
    """cRT (:mod:`mlbalance.train.crt`), with val macro/micro F1 at 0.5 before and after."""
    from mlbalance.train.crt import retrain_classifier

    cfg, data, loop = run.cfg, run.data, run.loop

    def val_f1() -> tuple[float, float]:
        logits, _ = loop.score(loop.val_ds, data.val.n_rows)
        m = evaluate_scores(
            data.val_y, sigmoid(logits), 0.5, names=data.names, train_counts=data.counts,
            per_label=False, head_min=cfg.head_min, tail_max=cfg.tail_max,
        )  # fmt: skip
        return float(m.get("macro_f1") or 0.0), float(m.get("micro_f1") or 0.0)

    before = val_f1()
    info = retrain_classifier(
        run.model, train_ds, data.train.labels, cfg=cfg, runtime=run.rt,
        amp_dtype=loop.amp_dtype, loss_fn=loss_fn,
    )  # fmt: skip
    after = val_f1()
    info["val_at_0.5_before"] = {"macro_f1": before[0], "micro_f1": before[1]}
    info["val_at_0.5_after"] = {"macro_f1": after[0], "micro_f1": after[1]}
    run.say(
        f"classifier re-trained (cRT, {info['epochs']} epoch(s) of {info['rows_per_epoch']:,} "
        f"rows by the {info['sampler']} sampler): val at 0.5 macro F1 {before[0]:.4f} -> "
        f"{after[0]:.4f}, micro F1 {before[1]:.4f} -> {after[1]:.4f}"
    )
    if after[0] < before[0]:
        run.say(
            f"warning: cRT lowered val macro F1 at 0.5 ({before[0]:.4f} -> {after[0]:.4f}); "
            "thresholds are tuned on the re-trained layer all the same"
        )
    return info


def _tune(run: _Run, val_scores: np.ndarray) -> Any:
    """Per-label thresholds on val (:class:`~mlbalance.thresholds.ThresholdTuner`).

    With ``threshold_cv`` and ``threshold_guard`` (the defaults: 5 folds, by group) a label
    keeps its own cut only where that cut beats the global one out of fold: on fine-tuned
    MiniLM (10 runs, 3 data sets) that kept micro F1 within 0.5 point of the 0.5 cut or above
    it in every run and raised macro F1 in every run, where plain per-label cuts lost up to 6.7
    micro F1 points (BENCHMARKS.md, "Fine-tuned recipe study").
    """
    from mlbalance.thresholds import ThresholdTuner

    cfg = run.cfg
    tuner = ThresholdTuner(
        mode=cfg.threshold_mode,
        target_recall=cfg.target_recall,
        min_positives=cfg.min_positives,
        smoothing=cfg.threshold_smoothing,
        fallback=cfg.threshold_fallback,
        cv=cfg.threshold_cv,
        guard=cfg.threshold_guard,
        random_state=cfg.seed,
    ).fit(val_scores, run.data.val_y)
    tuned = tuner.result_
    if tuner.crossfit_ is not None:
        run.say(_crossfit_line(tuner.crossfit_))
    return tuned, {run.data.names[j]: str(r) for j, r in sorted(tuned.fallback.items())}


def _crossfit_line(crossfit: dict[str, Any]) -> str:
    """One line: out-of-fold micro/macro F1 of the cuts, and what the guard kept."""
    oof = crossfit["out_of_fold"]
    chosen = oof.get("chosen", oof["per_label"])
    line = (
        f"thresholds, {crossfit['folds']}-fold out of fold on val: micro/macro F1 at 0.5 "
        f"{oof['at_0.5']['micro_f1']:.4f}/{oof['at_0.5']['macro_f1']:.4f}, global cut "
        f"{oof['global']['micro_f1']:.4f}/{oof['global']['macro_f1']:.4f}, chosen cuts "
        f"{chosen['micro_f1']:.4f}/{chosen['macro_f1']:.4f}"
    )
    decisions = crossfit.get("decisions")
    if decisions:
        line += f" (guard: {decisions['kept_own']} label(s) keep their own cut)"
    return line


def _final_metrics(
    run: _Run, val_logits: np.ndarray, thresholds: np.ndarray
) -> tuple[dict[str, Any], int, dict[str, np.ndarray]]:
    """Val and test metrics at the tuned thresholds and at 0.5; test rows truncated; scores."""
    data, loop = run.data, run.loop
    kw: dict[str, Any] = {
        "names": data.names,
        "train_counts": data.counts,
        "head_min": run.cfg.head_min,
        "tail_max": run.cfg.tail_max,
    }
    val_scores = sigmoid(val_logits)
    scores = {"val": val_scores}
    metrics: dict[str, Any] = {
        "val": evaluate_scores(data.val_y, val_scores, thresholds, **kw),
        "val_at_0.5": evaluate_scores(data.val_y, val_scores, 0.5, **kw),
        "val_loss": loop.host_loss(val_logits, data.val_y),
    }
    test_trunc = 0
    if data.test is not None:
        test_y, _ = align_labels(data.test, data.names)
        dataset = make_dataset(run.cfg, data.test, None, run.tokenizer, device=run.rt.device)
        test_logits, test_trunc = loop.score(dataset, data.test.n_rows)
        test_scores = sigmoid(test_logits)
        metrics["test"] = evaluate_scores(test_y, test_scores, thresholds, **kw)
        metrics["test_at_0.5"] = evaluate_scores(test_y, test_scores, 0.5, **kw)
        scores["test"] = test_scores
    return metrics, test_trunc, scores


def _finish(run: _Run, stopped_early: bool, started: float) -> TrainResult:
    """Tune thresholds on val with the best weights, score val and test, write the folder."""
    cfg, data, st = run.cfg, run.data, run.loop.state
    val_logits, val_trunc = run.loop.score(run.loop.val_ds, data.val.n_rows)
    tuned, fallback = _tune(run, sigmoid(val_logits))
    thresholds = np.asarray(tuned.thresholds, dtype=np.float64)
    metrics, test_trunc, scores = _final_metrics(run, val_logits, thresholds)
    result = TrainResult(
        out=Path(cfg.out),
        names=data.names,
        history=st.history,
        best_epoch=st.best_epoch,
        best_value=st.best_value,
        metrics=metrics,
        fallback=fallback,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        train_samples_per_s=st.train_samples / max(st.train_seconds, 1e-9),
        data=_data_record(run, {"val": val_trunc, "test": test_trunc}),
    )
    if fallback:
        groups = "; ".join(f"{len(labels)} × {why}" for why, labels in result.fallback_groups())
        run.say(f"thresholds: {len(fallback)} of {len(data.names)} labels fell back: {groups}")
    if run.rt.is_main:
        args = {
            **cfg.to_dict(),
            "mode": data.mode,
            "labels": data.names,
            "label_layout": label_layout(data.train.spec, data.names),
            "features": data.feature_record(),
            "recipe_presets": cfg.from_recipe(),
            "max_length": None if data.embedding else cfg.max_length,
        }
        try:
            write_model_folder(
                cfg.out, model=run.model, tokenizer=run.tokenizer, thresholds=tuned,
                names=data.names, train_counts=data.counts, n_rows=data.train.n_rows,
                args=args, result=result, overwrite=cfg.overwrite,
                scores=scores if cfg.save_scores else None,
            )  # fmt: skip
        except MlbalanceError as exc:  # the trained weights are not lost: say where they are
            if not (cfg.checkpoint_path / "last").is_dir():
                raise
            raise MlbalanceError(
                f"{exc}; the run's checkpoints are kept in {cfg.checkpoint_path}: resume from "
                "them to write the model folder without training again"
            ) from None
        if not cfg.keep_checkpoints:
            shutil.rmtree(cfg.checkpoint_path, ignore_errors=True)
    run.rt.barrier()
    return result


def _data_record(run: _Run, truncated: dict[str, int]) -> dict[str, Any]:
    data = run.data
    return {
        "train_rows": data.train.n_rows,
        "val_rows": data.val.n_rows,
        "test_rows": data.test.n_rows if data.test is not None else 0,
        "empty_text": {
            "train": data.train.stats.get("empty_text", 0),
            "val": data.val.stats.get("empty_text", 0),
        },
        "truncated": {"train_first_epoch": run.loop.state.train_truncated, **truncated},
        "max_length": None if data.embedding else run.cfg.max_length,
        "unseen_labels": data.unseen,
        "sampler": run.sampler,
    }
