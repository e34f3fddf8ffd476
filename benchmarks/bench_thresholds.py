"""Threshold modes out of sample: tune on a (small) dev set, score on test.

Scores come from a linear head (BCE, standardised inputs, head bias from the label priors) on
frozen sentence embeddings, trained here on CPU:

* GoEmotions (28 labels): all-MiniLM-L6-v2 embeddings from ``benchmarks/study_embed.py``;
* the built-in synthetic long tail (500 labels, ``make_synthetic_table(rows, 500, seed=0,
  words_per_row=8)``, split 80/10/10), static MiniLM word-piece embeddings (study_embed's
  ``--static``).

Each mode of :data:`mlbalance.thresholds.compare.MODES` is tuned on ``--dev-rows`` rows drawn
from dev (``--draws`` draws; 0 = all of dev) and scored on all of test with
:func:`~mlbalance.thresholds.compare.compare_modes`. ``--speed`` times the search on random
scores (500 labels x 100,000 rows). Embeddings and scores are cached under ``--cache``
(default ``bench-output/``, git-ignored). Run::

    .venv/bin/python benchmarks/bench_thresholds.py --dataset goemotions --dev-rows 1000 --draws 5
    .venv/bin/python benchmarks/bench_thresholds.py --dataset synthetic --dev-rows 1000 --draws 5
    .venv/bin/python benchmarks/bench_thresholds.py --speed
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "bench-output"


def load_split(cache: Path, dataset: str, part: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """Cached embeddings and labels of one split (embedding them first when absent)."""
    import study_embed

    emb = cache / "embed"
    x_path = emb / f"{dataset}-{part}.X.npy"
    if not x_path.exists():
        if dataset == "goemotions":
            study_embed.embed_goemotions(emb, threads=1)
        else:
            study_embed.embed_synthetic(emb, ROWS[0], static=True)
    return np.load(x_path), sp.load_npz(emb / f"{dataset}-{part}.Y.npz").tocsr()


ROWS = [100_000]


def train_head(
    x: np.ndarray, y: sp.csr_matrix, *, epochs: int, seed: int = 0, lr: float = 1e-3
) -> Any:
    """A linear head trained with BCE (AdamW, batch 256): returns ``scores(x) -> probs``."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y.toarray().astype(np.float32))
    prior = np.clip(np.asarray(y.mean(axis=0)).ravel(), 1e-6, 1 - 1e-6)
    head = torch.nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        head.bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(xt.shape[0], generator=gen).split(256):
            opt.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            opt.step()

    def scores(features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            z = head(torch.from_numpy((features - mean) / std).float())
            return torch.sigmoid(z).double().numpy()

    return scores


def scores_for(cache: Path, dataset: str, epochs: int) -> dict[str, Any]:
    """Dev and test scores of the head (cached), the truth and the train counts."""
    path = cache / "thresholds" / f"{dataset}-scores.npz"
    val = "dev" if dataset == "goemotions" else "val"
    y_train = load_split(cache, dataset, "train")[1]
    y_dev, y_test = load_split(cache, dataset, val)[1], load_split(cache, dataset, "test")[1]
    if not path.exists():
        x_train, _ = load_split(cache, dataset, "train")
        t0 = time.perf_counter()
        scorer = train_head(x_train, y_train, epochs=epochs)
        print(f"{dataset}: head trained in {time.perf_counter() - t0:.0f} s", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            dev=scorer(load_split(cache, dataset, val)[0]).astype(np.float32),
            test=scorer(load_split(cache, dataset, "test")[0]).astype(np.float32),
        )
    data = np.load(path)
    counts = np.diff(y_train.tocsc().indptr)
    return {"dev": data["dev"], "test": data["test"], "y_dev": y_dev, "y_test": y_test,
            "train_counts": counts}  # fmt: skip


def run(dataset: str, dev_rows: int, draws: int, cache: Path, epochs: int) -> dict[str, Any]:
    """compare_modes over dev draws; the mean and std of every metric per mode."""
    from mlbalance.thresholds.compare import compare_modes

    d = scores_for(cache, dataset, epochs)
    n_dev = d["dev"].shape[0]
    runs = []
    for draw in range(max(draws, 1)):
        rows = (
            np.sort(np.random.default_rng(draw).choice(n_dev, dev_rows, replace=False))
            if dev_rows and dev_rows < n_dev
            else np.arange(n_dev)
        )
        t0 = time.perf_counter()
        table = compare_modes(d["dev"][rows], d["y_dev"][rows], d["test"], d["y_test"],
                              train_counts=d["train_counts"], random_state=draw)  # fmt: skip
        print(f"{dataset} draw {draw}: {len(rows)} dev rows, {time.perf_counter() - t0:.0f} s",
              flush=True)  # fmt: skip
        runs.append(table)
    summary: dict[str, Any] = {}
    for mode in runs[0]:
        summary[mode] = {}
        for key, value in runs[0][mode].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                vals = np.array([r[mode][key] for r in runs], dtype=float)
                summary[mode][key] = float(vals.mean())
                summary[mode][key + "_std"] = float(vals.std())
            elif value is None:
                summary[mode][key] = None
        summary[mode]["worst_delta_micro_f1"] = float(min(r[mode]["delta_micro_f1"] for r in runs))
        summary[mode]["worst_delta_macro_f1"] = float(min(r[mode]["delta_macro_f1"] for r in runs))
        oof = [r[mode]["crossfit"] for r in runs if "crossfit" in r[mode]]
        if oof and "decisions" in oof[0]:
            summary[mode]["kept_own"] = float(np.mean([o["decisions"]["kept_own"] for o in oof]))
    return {"dataset": dataset, "dev_rows": dev_rows, "draws": len(runs), "summary": summary,
            "runs": runs, "n_labels": int(d["dev"].shape[1]), "test_rows": int(d["test"].shape[0])}  # fmt: skip


def table_md(result: dict[str, Any]) -> str:
    s = result["summary"]

    def f(v: Any, signed: bool = False) -> str:
        if v is None:
            return "-"
        return f"{v:+.3f}" if signed else f"{v:.3f}"

    lines = [
        "| mode | micro F1 | Δ micro (worst) | macro F1 | Δ macro (worst) | tail R | labels kept own |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in s.items():
        lines.append(
            f"| {mode} | {f(r['micro_f1'])} | {f(r['delta_micro_f1'], True)} "
            f"({f(r['worst_delta_micro_f1'], True)}) | {f(r['macro_f1'])} | "
            f"{f(r['delta_macro_f1'], True)} ({f(r['worst_delta_macro_f1'], True)}) | "
            f"{f(r.get('macro_recall_tail'))} | {r['kept_own']:.0f} |"
            if "kept_own" in r
            else f"| {mode} | {f(r['micro_f1'])} | {f(r['delta_micro_f1'], True)} "
            f"({f(r['worst_delta_micro_f1'], True)}) | {f(r['macro_f1'])} | "
            f"{f(r['delta_macro_f1'], True)} ({f(r['worst_delta_macro_f1'], True)}) | "
            f"{f(r.get('macro_recall_tail'))} | - |"
        )
    return "\n".join(lines)


def speed(rows: int = 100_000, labels: int = 500, repeat: int = 3) -> dict[str, float]:
    """Seconds to tune ``labels`` x ``rows`` random long-tailed scores (best of *repeat*)."""
    from mlbalance.thresholds import ThresholdTuner, tune_thresholds

    rng = np.random.default_rng(0)
    freq = 0.2 / np.arange(1, labels + 1) ** 0.9
    y = sp.csr_matrix(rng.random((rows, labels)) < freq, dtype=np.uint8)
    noise = rng.normal(0, 1.2, (rows, labels)).astype(np.float32)
    s = 1 / (1 + np.exp(-(3 * y.toarray().astype(np.float32) - 4 + noise)))
    tune_thresholds(y[:200], s[:200])  # compile
    out = {}
    for name, fn in (
        ("tune_thresholds", lambda: tune_thresholds(y, s)),
        ("ThresholdTuner(cv=5, guard='group')",
         lambda: ThresholdTuner(cv=5, guard="group").fit(s, y)),
        ("ThresholdTuner(cv=5, guard='group', calibration='temperature')",
         lambda: ThresholdTuner(cv=5, guard="group", calibration="temperature").fit(s, y)),
    ):  # fmt: skip
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = round(best, 3)
        print(f"{name}: {best:.3f} s for {labels} labels x {rows:,} rows", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=["goemotions", "synthetic"])
    ap.add_argument("--dev-rows", type=int, default=1000, help="0: all of dev")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--synthetic-rows", type=int, default=100_000)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args(argv)
    ROWS[0] = args.synthetic_rows
    if args.speed:
        print(json.dumps(speed(), indent=2))
    if args.dataset:
        import torch

        torch.set_num_threads(args.threads)
        result = run(args.dataset, args.dev_rows, args.draws, args.cache, args.epochs)
        out = args.cache / "thresholds" / f"{args.dataset}-dev{args.dev_rows}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(table_md(result))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
