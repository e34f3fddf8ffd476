"""A plain PyTorch training loop that draws rare-label rows more often.

A hashed bag-of-words linear classifier on mlbalance's built-in synthetic text data, trained
with ``RepeatFactorSampler`` (or ``ClassAwareSampler``, or plain shuffling to compare).
Runs on CPU in well under a minute; no downloads::

    .venv/bin/python examples/custom_loop.py                       # repeat-factor sampling
    .venv/bin/python examples/custom_loop.py --sampler shuffle     # the baseline
    .venv/bin/python examples/custom_loop.py --sampler class_aware
    # the same loop on 2 processes (gloo); the sampler splits each epoch between ranks
    .venv/bin/python -m torch.distributed.run --nproc_per_node 2 examples/custom_loop.py

The sampler lines are the only change to an ordinary loop: build it from the training
labels, pass it to the DataLoader, call ``set_epoch`` at the start of every epoch.
"""

from __future__ import annotations

import argparse
import os
import time
import zlib

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from mlbalance.buckets import label_buckets
from mlbalance.labels import LabelMatrix
from mlbalance.samplers import ClassAwareSampler, RepeatFactorSampler, repeat_exposure
from mlbalance.synth import make_synthetic_table

N_BUCKETS = 1 << 16  # hashed vocabulary size; id 0 is padding


def hashed_tokens(texts: list[str], length: int = 64) -> torch.Tensor:
    """Texts as a padded ``(rows, length)`` matrix of hashed word ids.

    crc32 (stable across processes, unlike ``hash``) into ``1 .. N_BUCKETS - 1``; 0 pads.
    """
    out = np.zeros((len(texts), length), dtype=np.int64)
    for i, text in enumerate(texts):
        words = text.lower().split()[:length]
        out[i, : len(words)] = [1 + zlib.crc32(w.encode()) % (N_BUCKETS - 1) for w in words]
    return torch.from_numpy(out)


class Rows(Dataset):
    """A map-style dataset of row numbers; :meth:`batch` gathers tokens and labels at once."""

    def __init__(self, tokens: torch.Tensor, labels: LabelMatrix) -> None:
        self.tokens = tokens
        self.labels = torch.from_numpy(labels.to_dense(np.float32))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, i: int) -> int:
        return i

    def batch(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The collate function: (token ids, labels) of a batch of row numbers."""
        idx = torch.as_tensor(rows)
        return self.tokens[idx], self.labels[idx]


class LinearBoW(nn.Module):
    """A linear model over hashed bag-of-words (EmbeddingBag sum = sparse input x weights)."""

    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(N_BUCKETS, n_labels, mode="sum", sparse=True, padding_idx=0)
        nn.init.zeros_(self.bag.weight)
        self.bias = nn.Parameter(torch.full((n_labels,), -3.0))  # start from "rarely on"

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bag(ids) + self.bias


def f1_per_label(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-label F1 (NaN where the label has no positive in truth or prediction) and micro F1."""
    tp = (y_true & y_pred).sum(0).astype(float)
    fp = (~y_true & y_pred).sum(0).astype(float)
    fn = (y_true & ~y_pred).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = 2 * tp / (2 * tp + fp + fn)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return per, float(micro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=["repeat", "class_aware", "shuffle"], default="repeat")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.05, help="repeat threshold t")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (the model is tiny: more threads mostly add contention)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    distributed = "RANK" in os.environ  # launched by torchrun
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    torch.manual_seed(args.seed)  # model initialisation only; the samplers ignore it
    torch.set_num_threads(args.threads)

    # --- data: synthetic long-tailed text, 80/20 split ------------------------------
    table = make_synthetic_table(args.rows, args.labels, seed=args.seed)
    labels = LabelMatrix.from_lists(table.column("labels").to_pylist())
    tokens = hashed_tokens(table.column("text").to_pylist())
    order = np.random.default_rng(args.seed).permutation(args.rows)
    cut = int(0.8 * args.rows)
    train_rows, test_rows = np.sort(order[:cut]), np.sort(order[cut:])
    y_train, y_test = labels.take(train_rows), labels.take(test_rows)
    train = Rows(tokens[torch.from_numpy(train_rows)], y_train)
    test = Rows(tokens[torch.from_numpy(test_rows)], y_test)

    # --- the sampler: the only change to an ordinary loop ---------------------------
    sampler: RepeatFactorSampler | ClassAwareSampler | DistributedSampler
    if args.sampler == "repeat":
        sampler = RepeatFactorSampler(y_train, threshold=args.threshold, seed=args.seed)
        if rank == 0:
            print(repeat_exposure(y_train, args.threshold).summary(top=3))
    elif args.sampler == "class_aware":
        sampler = ClassAwareSampler(y_train, seed=args.seed)
    else:  # the baseline: every row once per epoch
        sampler = DistributedSampler(
            train, num_replicas=dist.get_world_size() if distributed else 1, rank=rank,
            seed=args.seed,
        )  # fmt: skip
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler, collate_fn=train.batch)

    model: nn.Module = LinearBoW(labels.n_labels)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    core = model.module if distributed else model
    # Adagrad takes the embedding table's sparse gradients and the bias's dense one
    optimiser = torch.optim.Adagrad(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new rounding and order every epoch
        start, total, steps = time.perf_counter(), 0.0, 0
        model.train()
        for ids, y in loader:
            optimiser.zero_grad()
            loss = loss_fn(model(ids), y)
            loss.backward()
            optimiser.step()
            total, steps = total + loss.item(), steps + 1
        if rank == 0:
            print(
                f"epoch {epoch}: {len(sampler):,} rows on this rank, {steps} steps, "
                f"loss {total / max(steps, 1):.4f}, {time.perf_counter() - start:.1f} s"
            )

    # --- evaluation: micro F1 and macro F1 per head/medium/tail bucket --------------
    if rank == 0:
        model.eval()
        with torch.no_grad():
            scores = core(test.tokens)
        pred = (scores > 0).numpy()
        truth = test.labels.numpy().astype(bool)
        per, micro = f1_per_label(truth, pred)
        buckets = label_buckets(y_train.counts())
        parts = [
            f"{b} {np.nanmean(per[buckets == b]):.3f}"
            for b in ("head", "medium", "tail")
            if (buckets == b).any() and not np.isnan(per[buckets == b]).all()
        ]
        print(
            f"[{args.sampler}] test micro F1 {micro:.3f}, macro F1 {np.nanmean(per):.3f} "
            f"({', '.join(parts)})"
        )
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
