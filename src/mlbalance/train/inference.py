"""Scoring rows with a model: logits in row order, probabilities, the mean loss.

Shared by validation inside the training loop (:mod:`mlbalance.train.loop`) and by a loaded
model folder (:mod:`mlbalance.train.model_folder`); it knows neither. Under DDP each rank
scores the rows :meth:`~mlbalance.train.runtime.Runtime.my_rows` gives it and the scores are
gathered, so every rank ends with the same full array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mlbalance.train.data import batch_indices, loader
from mlbalance.train.runtime import Runtime, autocast

__all__ = [
    "logits_of",
    "mean_loss",
    "model_inputs",
    "output_width",
    "predict_logits",
    "sigmoid",
]

#: Keys of a batch (:class:`~mlbalance.train.data.TextBatches`) that are not model inputs.
NOT_INPUTS = ("labels", "n_truncated", "index")


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The model's keyword inputs of *batch*, copied to *device* without blocking the host.

    ``non_blocking`` overlaps the copy with compute when the batch is in pinned memory
    (DataLoader workers with ``pin_memory``); otherwise it is an ordinary copy.
    """
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in NOT_INPUTS}


def logits_of(output: Any) -> torch.Tensor:
    """Logits from a Hugging Face model output or a plain tensor."""
    return output if isinstance(output, torch.Tensor) else output.logits


def predict_logits(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    n_rows: int,
    *,
    batch_size: int = 128,
    runtime: Runtime | None = None,
    amp_dtype: torch.dtype | None = None,
    num_workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Logits of every row of *dataset* (this rank's share, then gathered).

    Parameters
    ----------
    model : torch.nn.Module
        Put in eval mode for the call and restored afterwards.
    dataset : torch.utils.data.Dataset
        Indexed by lists of rows (:class:`~mlbalance.train.data.TextBatches`).
    n_rows : int
        Rows of *dataset*.
    runtime : Runtime, optional
        Ranks and device; default one process on the model's device.
    amp_dtype : torch.dtype, optional
        Autocast dtype (None = float32).
    progress : callable, optional
        Called with the rows of each finished batch.

    Returns
    -------
    logits : numpy.ndarray
        ``(n_rows, n_labels)`` float32, in row order, identical on every rank.
    n_truncated : int
        Rows whose text was cut at the maximum length (all ranks).
    """
    rt = runtime or Runtime(device=next(model.parameters()).device)
    rows = rt.my_rows(n_rows)
    lengths = getattr(dataset, "lengths", None)
    # longest rows first: batches of similar length pad little (the scores are put back in
    # row order below); a model that runs out of memory does so on the first batch
    perm = np.argsort(-lengths[rows], kind="stable") if lengths is not None else None
    order = rows[perm] if perm is not None else rows
    chunks: list[torch.Tensor] = []
    truncated = 0
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(rt.device, amp_dtype):
        for batch in loader(dataset, batch_indices(order, batch_size), num_workers=num_workers):
            truncated += int(batch["n_truncated"])
            chunks.append(logits_of(model(**model_inputs(batch, rt.device))).float())
            if progress is not None:
                progress(len(batch["index"]))
    model.train(was_training)
    width = chunks[0].shape[1] if chunks else output_width(model)
    local = torch.cat(chunks) if chunks else torch.zeros((0, width), device=rt.device)
    if perm is not None and len(local):
        unsorted = torch.empty_like(local)
        unsorted[torch.from_numpy(perm).to(local.device)] = local
        local = unsorted
    # the one device-to-host copy of evaluation (and, under DDP, a gather: a sync)
    return rt.gather_rows(local, n_rows), rt.sum_int(truncated)


def output_width(model: torch.nn.Module) -> int:
    """Number of labels *model* scores."""
    module = getattr(model, "module", model)
    names = getattr(module, "names", None)
    if names is not None:
        return len(names)
    config: Any = getattr(module, "config")  # noqa: B009
    return int(config.num_labels)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, without overflow warnings (float32)."""
    return (0.5 * (1.0 + np.tanh(0.5 * logits.astype(np.float64)))).astype(np.float32)


def mean_loss(
    loss_fn: Callable[..., torch.Tensor], logits: np.ndarray, y_true: Any, chunk: int = 8192
) -> float:
    """The loss over all rows, on the host, in chunks (rows weighted equally).

    *loss_fn* must live on the CPU (its buffers, e.g. class weights).
    """
    total, n = 0.0, logits.shape[0]
    if n == 0:
        return float("nan")
    with torch.no_grad():
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            y = y_true[start:stop]
            y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            value = loss_fn(
                torch.from_numpy(logits[start:stop]), torch.from_numpy(y.astype(np.float32))
            )
            total += float(value) * (stop - start)
    return total / n
