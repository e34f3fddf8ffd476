"""The training loop: ``fit`` runs epochs of ``train_epoch`` then ``validate``, over one state.

Every host-device synchronisation is deliberate and commented: per batch the loop only
enqueues work (non-blocking copies, forward, backward, optimizer step); the running loss is
summed on the device and read (``.item()``, a sync) every ``log_every`` optimizer steps and
at the end of an epoch; rank collectives run once per epoch. Validation copies scores to the
host once per call.

:class:`PhaseTimer` adds up the host's wall time per phase of a batch (waiting for data,
forward + backward, optimizer, syncs) into each epoch's history record. On a GPU the kernels
run asynchronously, so without ``sync_device=True`` a phase measures the time to *issue* its
work, and the device time shows up in the next phase that waits (a sync, or a full queue).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.metrics import evaluate_scores
from mlbalance.train.batching import length_grouped_order
from mlbalance.train.build import epoch_order
from mlbalance.train.checkpoint import TrainState, save_checkpoint
from mlbalance.train.config import METRICS_MINIMISED, TrainConfig
from mlbalance.train.data import batch_indices, loader
from mlbalance.train.inference import logits_of, mean_loss, model_inputs, predict_logits, sigmoid
from mlbalance.train.runtime import Runtime, autocast, uses_cuda_graphs

__all__ = ["Loop", "PhaseTimer", "batches_to_run"]

Log = Callable[[str], None]


@dataclass
class PhaseTimer:
    """Wall time per phase, summed until :meth:`take`.

    Parameters
    ----------
    sync_device : bool
        Synchronise the CUDA device at the end of each phase, so that device time is charged
        to the phase that queued it (slower: it removes the overlap it measures).
    """

    sync_device: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the block's wall time to *name*."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync_device and torch.cuda.is_available():
                torch.cuda.synchronize()  # deliberate: only when timing device phases
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def take(self) -> dict[str, float]:
        """The sums so far (rounded, seconds), and start again."""
        out = {k: round(v, 4) for k, v in self.seconds.items()}
        self.seconds = {}
        return out


def batches_to_run(n_batches: int, done: int, grad_accum: int, steps_left: int | None) -> int:
    """Batches an epoch trains: to its end, or to the optimizer step that reaches the limit.

    An optimizer step closes every *grad_accum* batches and at the epoch's last batch; *done*
    batches (a resumed epoch) are already trained.
    """
    remaining = max(0, n_batches - done)
    if steps_left is None:
        return remaining
    if steps_left <= 0:
        return 0
    first = (done // grad_accum + 1) * grad_accum  # the first step boundary after `done`
    return min(n_batches, first + (steps_left - 1) * grad_accum) - done


class _LossMeter:
    """The training loss of an epoch, summed on the device and read only when asked."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.running = torch.zeros((), device=rt.device)
        self.pending = self.batches = self.rows = self.rows_since = 0
        self.total = 0.0
        self.since = time.perf_counter()

    def add(self, loss: torch.Tensor, rows: int) -> None:
        """Add a batch's loss on the device (no sync)."""
        self.running += loss.detach()
        self.pending += 1
        self.rows += rows
        self.rows_since += rows

    def read(self) -> tuple[float, float]:
        """Mean loss of the batches since the last read (a sync) and rows/s, all ranks."""
        value = float(self.running.item()) / max(self.pending, 1)
        self.total += value * self.pending
        self.batches += self.pending
        self.running.zero_()
        self.pending = 0
        now = time.perf_counter()
        rate = self.rows_since * self.rt.world / max(now - self.since, 1e-9)
        self.since, self.rows_since = now, 0
        return value, rate

    def epoch_loss(self) -> float:
        """Mean loss of the epoch's batches over every rank (a sync and a collective)."""
        if self.pending:
            self.read()
        return self.rt.mean_float(self.total / max(self.batches, 1))


def metric_value(name: str, val_loss: float, metrics: dict[str, Any]) -> float:
    """The selection metric of an epoch (NaN when undefined, e.g. no tail label in val)."""
    if name == "val_loss":
        return val_loss
    value = metrics.get(name)
    return math.nan if value is None else float(value)


class Loop:
    """Epochs of training and validation over a :class:`TrainState`, checkpointing as it goes.

    The parts (model, optimizer, sampler, datasets, ...) are built by
    :mod:`mlbalance.train.trainer`; the loop only runs them.
    """

    def __init__(
        self,
        *,
        cfg: TrainConfig,
        rt: Runtime,
        model: torch.nn.Module,
        train_model: torch.nn.Module,
        loss_fn: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        amp_dtype: torch.dtype | None,
        sampler: Any,
        train_ds: torch.utils.data.Dataset,
        val_ds: torch.utils.data.Dataset,
        val_y: Any,
        train_counts: np.ndarray,
        state: TrainState,
        checkpoints: Path,
        say: Log,
        progress: bool | None,
        planned_epochs: int,
    ) -> None:
        self.cfg, self.rt, self.state = cfg, rt, state
        self.model = model  # the module itself: its weights are saved and evaluated
        self.train_model = train_model  # what the batches go through (DDP-wrapped or model)
        self.loss_fn, self.amp_dtype = loss_fn, amp_dtype
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.sampler, self.train_ds = sampler, train_ds
        self.val_ds, self.val_y, self.train_counts = val_ds, val_y, train_counts
        self.checkpoints, self.say = checkpoints, say
        self.progress, self.planned_epochs = progress, planned_epochs
        self.timer = PhaseTimer()
        self.graphs = uses_cuda_graphs(cfg.compile, rt.device)

    # ------------------------------------------------------------------------- fit
    def fit(self) -> bool:
        """Train until the epochs, ``max_steps`` or ``patience`` run out; True if stopped early."""
        cfg, st = self.cfg, self.state
        while st.epoch < cfg.epochs and not self._steps_done():
            stats = self.train_epoch()
            val_loss, metrics = self.validate()
            if self._end_epoch(stats, val_loss, metrics):
                self.say(f"early stop: no gain in {cfg.metric} for {cfg.patience} epoch(s)")
                return True
        return False

    def _steps_done(self) -> bool:
        return self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps

    def _end_epoch(self, stats: dict[str, Any], val_loss: float, metrics: dict[str, Any]) -> bool:
        """Record the epoch, keep the best weights, checkpoint; True when patience ran out."""
        cfg, st, rt = self.cfg, self.state, self.rt
        value = metric_value(cfg.metric, val_loss, metrics)
        higher = cfg.metric not in METRICS_MINIMISED
        improved = st.best_epoch < 0 or (value > st.best_value if higher else value < st.best_value)
        record = {
            "epoch": st.epoch + 1,
            "step": st.step,
            "train_loss": round(stats["train_loss"], 6),
            "val_loss": round(val_loss, 6),
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "samples_per_s": round(stats["rows"] / max(stats["seconds"], 1e-9), 1),
            "phase_seconds": stats["phases"],
            "best": improved,
        }
        st.history.append(record)
        if improved:
            st.best_value, st.best_epoch, st.bad_epochs = value, st.epoch + 1, 0
            if rt.is_main:
                save_checkpoint(self.checkpoints, "best", self.model, st)
        else:
            st.bad_epochs += 1
        self.say(
            f"epoch {st.epoch + 1}: train loss {stats['train_loss']:.4f}, val loss "
            f"{val_loss:.4f}, {cfg.metric} {value:.4f}{' (best)' if improved else ''}, "
            f"{record['samples_per_s']:.0f} rows/s"
        )
        st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        self.save("last")
        rt.barrier()
        return cfg.patience is not None and st.bad_epochs >= cfg.patience

    def save(self, name: str) -> None:
        """Checkpoint the state, weights and optimizer as ``name`` (rank 0 writes)."""
        if self.rt.is_main:
            save_checkpoint(
                self.checkpoints, name, self.model, self.state,
                optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            )  # fmt: skip

    # ------------------------------------------------------------------------- one epoch
    def _epoch_batches(self) -> tuple[list[list[int]], int]:
        st, cfg = self.state, self.cfg
        order = epoch_order(self.sampler, st.epoch)
        lengths = getattr(self.train_ds, "lengths", None)
        if cfg.group_by_length and lengths is not None:  # the same rows, fewer pad tokens
            order = length_grouped_order(order, lengths, cfg.batch_size, seed=(cfg.seed, st.epoch))
        batches = batch_indices(order, cfg.batch_size)
        n_batches = self.rt.min_int(len(batches))  # equal on every rank, or DDP would hang
        steps_left = None if cfg.max_steps is None else cfg.max_steps - st.step
        todo = batches_to_run(n_batches, st.batch_in_epoch, cfg.grad_accum, steps_left)
        return batches[st.batch_in_epoch : st.batch_in_epoch + todo], n_batches

    def train_epoch(self) -> dict[str, Any]:
        """Train one epoch (from ``batch_in_epoch`` on); return its loss, rows and timings."""
        from mlbalance._progress import progress_bar

        cfg, st, rt = self.cfg, self.state, self.rt
        batches, n_batches = self._epoch_batches()
        bar = progress_bar(
            desc=f"epoch {st.epoch + 1}/{self.planned_epochs}", unit="batch",
            total=st.batch_in_epoch + len(batches), initial=st.batch_in_epoch,
            enabled=False if not rt.is_main else self.progress,
        )  # fmt: skip
        meter = _LossMeter(rt)
        started = time.perf_counter()
        pin = rt.device.type == "cuda"
        data = loader(self.train_ds, batches, num_workers=cfg.num_workers, pin_memory=pin)
        with contextlib.closing(data):  # stops the prefetch thread however the epoch ends
            for _ in range(len(batches)):
                with self.timer.phase("data"):
                    batch = next(data)
                self._train_batch(batch, n_batches, meter, bar)
                bar.update(1)
        bar.close()
        with self.timer.phase("sync"):
            train_loss = meter.epoch_loss()
        seconds = time.perf_counter() - started
        st.train_seconds += seconds
        st.train_samples += meter.rows * rt.world
        return {
            "train_loss": train_loss,
            "rows": meter.rows * rt.world,
            "seconds": seconds,
            "phases": self.timer.take(),
        }

    def _train_batch(
        self, batch: dict[str, torch.Tensor], n_batches: int, meter: _LossMeter, bar: Any
    ) -> None:
        """Forward, backward and (at a step boundary) the optimizer step of one batch."""
        cfg, st, timer = self.cfg, self.state, self.timer
        if st.epoch == 0:
            st.train_truncated += int(batch["n_truncated"])  # a CPU tensor: no sync
        st.batch_in_epoch += 1
        boundary = st.batch_in_epoch % cfg.grad_accum == 0 or st.batch_in_epoch == n_batches
        with timer.phase("forward_backward"):
            loss = self._forward_backward(batch, sync_grads=self.rt.world == 1 or boundary)
        meter.add(loss, len(batch["index"]))
        if not boundary:
            return
        with timer.phase("optimizer"):
            self._optimizer_step()
        if st.step % cfg.log_every == 0:
            with timer.phase("sync"):
                value, rate = meter.read()  # the one sync per log interval
            bar.set_postfix(loss=f"{value:.4f}", rows_s=f"{rate:.0f}")
        if cfg.save_steps and st.step % cfg.save_steps == 0:
            with timer.phase("checkpoint"):
                self.save("last")

    def _forward_backward(
        self, batch: dict[str, torch.Tensor], *, sync_grads: bool
    ) -> torch.Tensor:
        """Loss of one batch and its backward pass (scaled for accumulation); no host sync.

        Under DDP, gradients are all-reduced only on the batch that closes an optimizer step.
        """
        rt = self.rt
        labels = batch["labels"].to(rt.device, non_blocking=True)
        inputs = model_inputs(batch, rt.device)
        no_sync = getattr(self.train_model, "no_sync", None)
        quiet = no_sync() if not sync_grads and no_sync is not None else contextlib.nullcontext()
        with quiet:
            if self.graphs:  # the previous step's graph outputs may now be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            with autocast(rt.device, self.amp_dtype):
                logits = logits_of(self.train_model(**inputs))
            loss = self.loss_fn(logits.float(), labels)
            self.scaler.scale(loss / self.cfg.grad_accum).backward()
        return loss

    def _optimizer_step(self) -> None:
        """Clip, step, update the scaler and schedule, clear the gradients."""
        cfg = self.cfg
        if cfg.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1

    # ------------------------------------------------------------------------- validation
    def score(self, dataset: torch.utils.data.Dataset, n_rows: int) -> tuple[np.ndarray, int]:
        """Logits of every row of *dataset* (all ranks), and the rows truncated."""
        return predict_logits(
            self.model, dataset, n_rows, batch_size=self.cfg.eval_batch_size, runtime=self.rt,
            amp_dtype=self.amp_dtype, num_workers=self.cfg.num_workers,
        )  # fmt: skip

    def validate(self) -> tuple[float, dict[str, Any]]:
        """Validation loss and metrics at 0.5 (no per-label table)."""
        names = list(self.state.labels)
        logits, _ = self.score(self.val_ds, self.val_y.shape[0])
        val_loss = self.host_loss(logits, self.val_y)
        metrics = evaluate_scores(
            self.val_y, sigmoid(logits), 0.5, names=names, train_counts=self.train_counts,
            per_label=False, head_min=self.cfg.head_min, tail_max=self.cfg.tail_max,
        )  # fmt: skip
        return val_loss, metrics

    def host_loss(self, logits: np.ndarray, y: Any) -> float:
        """The loss of host logits (the loss module visits the CPU for it)."""
        value = mean_loss(self.loss_fn.cpu(), logits, y)
        self.loss_fn.to(self.rt.device)
        return value
