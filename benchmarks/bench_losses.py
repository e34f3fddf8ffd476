"""Benchmark: loss forward + backward cost against plain ``torch.nn.BCEWithLogitsLoss``.

The trainer's speed target (issue 6: samples/s >= 0.95x a plain Hugging Face Trainer) leaves
little room for the loss, so this measures each mlbalance loss's forward + backward time on a
batch of logits (default 32 rows x 500 labels, the user's shape) and, for scale, a linear head
forward + backward on 384-dimensional embeddings (the frozen-encoder recipe, the cheapest model
the loss ever sits behind) and one BERT-base-sized linear layer (768 -> 768) as a stand-in for
"one layer of an encoder".

Run::

    .venv/bin/python benchmarks/bench_losses.py
    .venv/bin/python benchmarks/bench_losses.py --batch 256 --labels 500 --repeat 2000
    .venv/bin/python benchmarks/bench_losses.py --device cuda      # on a GPU machine

Prints a table: microseconds per forward + backward (median of ``--rounds`` rounds of
``--repeat`` calls), and the ratio to BCEWithLogitsLoss. Then the evaluation side: seconds for
:func:`mlbalance.metrics.multilabel_metrics` and
:func:`mlbalance.thresholds.tune_thresholds` on ``--eval-rows`` validation rows x
``--labels`` labels (long-tailed truth, float32 scores), with scikit-learn's per-label
``average_precision_score`` loop for reference (``--eval-rows 0`` skips this part).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mlbalance.train.losses import build_loss

CONFIGS: list[tuple[str, str, dict]] = [
    ("bce", "bce", {}),
    ("weighted-bce inverse", "weighted-bce", {"scheme": "inverse"}),
    (
        "weighted-bce sqrt-inverse clip 100",
        "weighted-bce",
        {"scheme": "sqrt-inverse", "max_weight": 100},
    ),
    ("weighted-bce effective-number", "weighted-bce", {"scheme": "effective-number"}),
    ("focal (gamma 2, alpha .25)", "focal", {}),
    ("asl (4, 0, clip .05)", "asl", {}),
    ("asl (4, 1, clip .05)", "asl", {"gamma_pos": 1.0}),
    ("db (DB-focal defaults)", "db", {}),
    ("db (gamma 0)", "db", {"gamma": 0.0}),
    ("logit-adjusted (tau 1)", "logit-adjusted", {}),
]


def _time_all(fns: list[Callable[[], None]], repeat: int, rounds: int, device: str) -> list[float]:
    """Median microseconds per call of each function.

    Rounds are interleaved (round 1 of every function, then round 2, ...) so that load from
    other processes on a shared machine hits all of them alike.
    """
    for fn in fns:
        for _ in range(max(10, repeat // 10)):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[i].append((time.perf_counter() - t0) / repeat * 1e6)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--labels", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads (0 = torch's default)"
    )
    ap.add_argument("--eval-rows", type=int, default=50_000)
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    dev = torch.device(args.device)
    # long-tailed training counts: Zipf-like over 1e6 rows, some labels with a handful of rows
    n_rows = 1_000_000
    counts = np.maximum(1, (200_000 / np.arange(1, args.labels + 1) ** 1.2).astype(np.int64))
    logits = torch.randn(args.batch, args.labels, device=dev) * 3
    targets = torch.as_tensor(
        rng.random((args.batch, args.labels)) < counts / n_rows * 20, dtype=torch.float32
    ).to(dev)
    x = logits.clone().requires_grad_(True)

    def step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            loss_fn(x, targets).backward()

        return run

    ref = torch.nn.BCEWithLogitsLoss()
    labels = ["torch BCEWithLogitsLoss (reference)"]
    fns = [step(ref)]
    for label, name, params in CONFIGS:
        loss = build_loss(name, label_counts=counts, n_rows=n_rows, **params).to(dev)
        labels.append(label)
        fns.append(step(loss))
    us = _time_all(fns, args.repeat, args.rounds, args.device)
    rows = list(zip(labels, us))
    base = us[0]

    # what the loss sits behind, for scale
    emb = torch.randn(args.batch, 384, device=dev)
    head = torch.nn.Linear(384, args.labels).to(dev)

    def head_step() -> None:
        head.zero_grad(set_to_none=True)
        ref(head(emb), targets).backward()

    layer_in = torch.randn(args.batch * 128, 768, device=dev)  # 128 tokens per row
    layer = torch.nn.Linear(768, 768).to(dev)

    def layer_step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(layer_in).sum().backward()

    (head_us,) = _time_all([head_step], args.repeat, args.rounds, args.device)
    (layer_us,) = _time_all([layer_step], max(5, args.repeat // 50), args.rounds, args.device)

    print(
        f"loss forward+backward, batch {args.batch} x {args.labels} labels, device {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'loss':40} {'us/step':>9} {'x BCE':>7}")
    for label, us in rows:
        print(f"{label:40} {us:9.1f} {us / base:7.2f}")
    print()
    print(f"{'for scale: linear head 384->L, BCE':40} {head_us:9.1f}")
    print(f"{'for scale: one 768x768 layer, 128 tok/row':40} {layer_us:9.1f}")
    worst = max(us for _, us in rows[1:])
    print(
        f"\nslowest loss adds {worst - base:.1f} us/step over BCE = "
        f"{(worst - base) / layer_us * 100:.2f}% of ONE encoder linear layer's step "
        f"(a BERT-base step has 6 such matmuls x 12 layers plus attention)"
    )
    if args.eval_rows:
        _bench_eval(args.eval_rows, args.labels)
    return 0


def _bench_eval(n: int, n_labels: int) -> None:
    import scipy.sparse as sp
    from sklearn.metrics import average_precision_score

    from mlbalance.metrics import multilabel_metrics
    from mlbalance.thresholds import tune_thresholds

    rng = np.random.default_rng(0)
    rates = np.maximum(2e-5, 0.2 / np.arange(1, n_labels + 1) ** 1.1)
    dense = rng.random((n, n_labels), dtype=np.float32) < rates
    y = sp.csr_matrix(dense)
    scores = rng.random((n, n_labels), dtype=np.float32) * 0.6 + 0.4 * dense
    counts = np.asarray(y.sum(axis=0)).ravel() * 10
    t0 = time.perf_counter()
    m = multilabel_metrics(y, scores, 0.5, train_counts=counts)
    t1 = time.perf_counter()
    tuned = tune_thresholds(y, scores)
    t2 = time.perf_counter()
    present = np.flatnonzero(np.asarray(y.sum(axis=0)).ravel() > 0)
    sk = [average_precision_score(dense[:, c], scores[:, c]) for c in present]
    t3 = time.perf_counter()
    assert abs(float(np.mean(sk)) - m["macro_map"]) < 1e-9
    print(f"\nevaluation, {n} rows x {n_labels} labels ({y.nnz} positives), float32 scores")
    print(f"{'step':40} {'seconds':>9}")
    print(f"{'multilabel_metrics (all metrics, mAP)':40} {t1 - t0:9.2f}")
    print(f"{'tune_thresholds (per label + global)':40} {t2 - t1:9.2f}")
    print(f"{'sklearn average_precision_score loop':40} {t3 - t2:9.2f}")
    print(f"  ({len(tuned.fallback)} labels fell back to the global threshold)")


if __name__ == "__main__":
    raise SystemExit(main())
