"""Decoupled classifier re-training (cRT) after the encoder has been trained.

Kang et al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR
2020: representations learn best from the data as it is (instance-balanced sampling); the
classifier's bias toward frequent classes is then fixed by re-initialising it and re-training
it alone, on the frozen representation, with class-balanced sampling (their "cRT").

Multilabel form used here: the frozen representation is the input of the model's output
layer (the pooled, dropout-free features of the encoder in eval mode, or the hidden layer of
an embedding head), computed once for every training row; the output layer (one logit per
label) is re-initialised — weights ~ N(0, 0.02) as BERT initialises its head, bias at the
label priors when ``prior_bias`` is set — and trained with the run's loss on those cached
features, for ``crt_epochs`` epochs drawn by the class-aware sampler (Shen et al. 2016: a
label uniformly, then one of its rows; the multilabel counterpart of class-balanced
sampling) or the repeat-factor sampler, with AdamW at the head learning rate. Deviation from
the paper: it re-trains a softmax classifier with cross-entropy for 10 epochs; the number of
epochs here is the caller's.

Features cost ``rows x width`` numbers (1M rows x 768 in bf16: 1.5 GB); they are kept on the
training device in the autocast dtype. Under DDP every rank computes all features and trains
the same layer from the same seed; rank 0's weights are then broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlbalance.train.inference import model_inputs
from mlbalance.train.model import head_linear, prior_logits
from mlbalance.train.runtime import Runtime, autocast, unwrap

__all__ = ["output_layer_inputs", "retrain_classifier"]


def output_layer_inputs(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    n_rows: int,
    *,
    batch_size: int,
    runtime: Runtime,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    """The input of the output layer for every row of *dataset*, in row order (eval mode).

    Returns
    -------
    torch.Tensor
        ``(n_rows, width)`` on the runtime's device, in *amp_dtype* (float32 without).
    """
    from mlbalance.train.data import batch_indices, loader

    module = unwrap(model)
    linear = head_linear(module, _n_labels(module))
    captured: list[torch.Tensor] = []
    hook = linear.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    lengths = getattr(dataset, "lengths", None)
    rows = np.arange(n_rows)
    perm = np.argsort(-lengths, kind="stable") if lengths is not None else rows
    dtype = amp_dtype or torch.float32
    feats: torch.Tensor | None = None
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), autocast(runtime.device, amp_dtype):
            for batch in loader(dataset, batch_indices(perm, batch_size)):
                module(**model_inputs(batch, runtime.device))
                x = captured.pop().to(dtype)
                if feats is None:
                    feats = torch.empty((n_rows, x.shape[1]), dtype=dtype, device=x.device)
                feats[batch["index"].to(x.device)] = x
    finally:
        hook.remove()
        module.train(was_training)
    assert feats is not None, "no rows to compute features of"
    return feats.clone()  # a normal tensor (inference tensors cannot enter autograd)


def _n_labels(module: torch.nn.Module) -> int:
    names = getattr(module, "names", None)
    if names is not None:
        return len(names)
    config: Any = getattr(module, "config")  # noqa: B009
    return int(config.num_labels)


def retrain_classifier(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    labels: Any,
    *,
    cfg: Any,
    runtime: Runtime,
    amp_dtype: torch.dtype | None,
    loss_fn: torch.nn.Module,
) -> dict[str, Any]:
    """Re-initialise *model*'s output layer and re-train it on frozen features (cRT).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model; only its output layer changes.
    dataset : torch.utils.data.Dataset
        The training rows (batches by index list).
    labels : LabelMatrix
        Their labels (the sampler draws from them).
    cfg : TrainConfig
        ``crt_epochs``, ``crt_sampler``, ``batch_size``, ``head_lr``, ``seed``,
        ``prior_bias``, ``rfs_threshold``, ``rfs_power``.
    loss_fn : torch.nn.Module
        The run's loss.

    Returns
    -------
    dict
        ``epochs``, ``sampler``, ``rows_per_epoch``, ``feature_width``, ``train_loss``
        (mean over the last epoch).
    """
    from mlbalance.samplers import ClassAwareSampler, RepeatFactorSampler

    n_rows = labels.n_rows
    feats = output_layer_inputs(
        model, dataset, n_rows, batch_size=max(cfg.batch_size, 256), runtime=runtime,
        amp_dtype=amp_dtype,
    )  # fmt: skip
    module = unwrap(model)
    linear = head_linear(module, labels.n_labels)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    with torch.no_grad():
        weight = torch.randn(linear.weight.shape, generator=generator) * 0.02
        linear.weight.copy_(weight.to(linear.weight))
        if linear.bias is not None:
            counts = labels.counts()
            bias = prior_logits(counts, n_rows) if cfg.prior_bias else np.zeros(len(counts))
            linear.bias.copy_(torch.as_tensor(bias, dtype=linear.bias.dtype))
    if cfg.crt_sampler == "class-aware":
        sampler: Any = ClassAwareSampler(labels, seed=cfg.seed)
    else:
        sampler = RepeatFactorSampler(
            labels, threshold=cfg.rfs_threshold, power=cfg.rfs_power, seed=cfg.seed
        )
    y = labels.matrix.tocsr()
    params = list(linear.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.head_lr, weight_decay=0.0)
    last = torch.zeros((), device=feats.device)
    rows_per_epoch = 0
    for epoch in range(cfg.crt_epochs):
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        rows_per_epoch = len(order)
        last.zero_()
        n_batches = 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x = feats[torch.from_numpy(idx).to(feats.device)].to(linear.weight.dtype)
            target = torch.from_numpy(y[idx].toarray().astype(np.float32)).to(feats.device)
            loss = loss_fn(linear(x).float(), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            last += loss.detach()  # summed on the device: no sync per batch
            n_batches += 1
        last /= max(n_batches, 1)
    # every rank trained the same way; make them identical bit for bit
    runtime.broadcast_([p.data for p in params])
    return {
        "epochs": int(cfg.crt_epochs),
        "sampler": cfg.crt_sampler,
        "rows_per_epoch": int(rows_per_epoch),
        "feature_width": int(feats.shape[1]),
        "train_loss": round(float(last.item()), 6),  # the one sync of cRT
    }
