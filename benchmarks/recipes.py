"""The recipe study: which imbalance remedy raises macro recall on long-tailed text (issue 7).

Every recipe trains the same linear head on frozen all-MiniLM-L6-v2 sentence embeddings with
``mlbalance.train.train`` itself (the head-only path of ``mlbalance train``: Parquet with an
``embedding`` column), so the winner is exactly what ``mlbalance train`` does. Only the loss,
the sampler or the training rows change between recipes; the optimiser settings (``--lr``,
``--epochs``, ``--batch-size``, ``--weight-decay``, ``--patience``) are tuned once for the
BCE baseline on dev (``--tune``) and reused for every recipe. Early stopping (on dev macro
mAP) and the per-label thresholds use dev/val only; test is scored once per run.

Recipes (the letters of issue 7):

a ``bce``            plain BCE
b ``wbce-inverse``   weighted BCE, raw inverse-frequency pos_weight ``(N - n_c) / n_c``, no clip
c ``wbce-sqrt``      weighted BCE, bounded: ``sqrt((N - n_c) / n_c)`` clipped at 10
d ``focal``          focal loss (Lin et al. 2017; gamma 2, alpha 0.25, the paper's defaults)
e ``asl``            asymmetric loss (Ridnik et al. 2021; gamma_neg 4, gamma_pos 0, clip 0.05)
f ``db``             distribution-balanced loss (Wu et al. 2020; the paper's defaults)
g ``rfs``            BCE + repeat-factor sampling (Gupta et al. 2019, LVIS; threshold = median
                     train label frequency, power 0.5)
g' ``cas``           BCE + class-aware sampling (Shen et al. 2016; a label, then one of its rows)
h ``mlros``          BCE on ML-ROS rows (Charte et al. 2015; at most 25 % more rows, the default)
i ``mlsmote``        BCE on MLSMOTE rows interpolated between embeddings (Charte et al. 2015;
                     k = 5, ranking label generation)

and four combinations of a loss with a sampler (``asl-rfs``, ``asl-cas``, ``wbce-sqrt-rfs``
and ``db-cas``: Wu et al. define the distribution-balanced loss's re-balancing weight against
class-aware sampling and train with it). Each run is scored on test at threshold 0.5 and with the per-label
thresholds that ``mlbalance train`` tunes on dev (max F1 per label, global fallback for labels
with < 3 dev positives). Metrics: :func:`mlbalance.metrics.multilabel_metrics` with the
*original* train counts for the head/medium/tail buckets (head > 100 train rows, tail < 20).

Embeddings come from ``benchmarks/study_embed.py`` (cached under ``--cache``). Run::

    .venv/bin/python benchmarks/study_embed.py --dataset goemotions
    .venv/bin/python benchmarks/recipes.py --dataset goemotions --seeds 0,1,2 \\
        --out /tmp/mlbalance-study/goemotions --threads 1
    .venv/bin/python benchmarks/study_embed.py --dataset synthetic --rows 200000 --static
    .venv/bin/python benchmarks/recipes.py --dataset synthetic --seeds 0,1,2 \\
        --out /tmp/mlbalance-study/synthetic --threads 1

(``--threads 1``: on a shared machine extra OpenMP threads spin against other processes.)

Outputs in ``--out``: ``results.json`` (every run, every metric, loss curves), ``table.md``
(mean +- std over seeds), ``recall_vs_frequency.png``, ``loss_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from mlbalance.io import write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_embed import DEFAULT_CACHE

# ------------------------------------------------------------------------------ recipes


@dataclass(frozen=True)
class Recipe:
    """One remedy: what changes against the BCE baseline."""

    key: str
    letter: str
    title: str
    loss: str = "bce"
    loss_params: dict[str, Any] = field(default_factory=dict)
    sampler: str = "none"
    resample: str | None = None  # "mlros" | "mlsmote"


RECIPES: dict[str, Recipe] = {
    r.key: r
    for r in (
        Recipe("bce", "a", "BCE"),
        Recipe(
            "wbce-inverse",
            "b",
            "weighted BCE, raw inverse pos_weight",
            "weighted-bce",
            {"scheme": "inverse"},
        ),
        Recipe(
            "wbce-sqrt",
            "c",
            "weighted BCE, sqrt-inverse, max 10",
            "weighted-bce",
            {"scheme": "sqrt-inverse", "max_weight": 10.0},
        ),
        Recipe("focal", "d", "focal (gamma 2, alpha 0.25)", "focal"),
        Recipe("asl", "e", "ASL (gamma- 4, gamma+ 0, clip 0.05)", "asl"),
        Recipe("db", "f", "distribution-balanced", "db"),
        Recipe("rfs", "g", "BCE + repeat-factor sampling", sampler="repeat-factor"),
        Recipe("cas", "g'", "BCE + class-aware sampling", sampler="class-aware"),
        Recipe("mlros", "h", "BCE on ML-ROS rows (+25 %)", resample="mlros"),
        Recipe("mlsmote", "i", "BCE on MLSMOTE rows (embeddings)", resample="mlsmote"),
        Recipe("asl-rfs", "e+g", "ASL + repeat-factor sampling", "asl", sampler="repeat-factor"),
        Recipe("asl-cas", "e+g'", "ASL + class-aware sampling", "asl", sampler="class-aware"),
        Recipe(
            "db-cas",
            "f+g'",
            "distribution-balanced + class-aware sampling (the DB paper's pairing)",
            "db",
            sampler="class-aware",
        ),
        Recipe(
            "wbce-sqrt-rfs",
            "c+g",
            "sqrt-inverse weighted BCE + repeat-factor sampling",
            "weighted-bce",
            {"scheme": "sqrt-inverse", "max_weight": 10.0},
            sampler="repeat-factor",
        ),
    )
}

#: Settings that ``--lr``, ``--epochs``, ... override on the command line.
OVERRIDABLE = ("lr", "epochs", "batch_size", "weight_decay", "patience", "head_hidden", "dropout")

#: Optimiser and head settings tuned once for the BCE baseline on dev, per dataset. Every head
#: standardises its input embeddings (``mlbalance train``'s default).
TUNED: dict[str, dict[str, Any]] = {
    # GoEmotions: ``--tune`` (linear head, BCE, seed 0) over lr 1e-4 / 3e-4 / 1e-3 / 3e-3 x wd
    # 0.01 / 0.1 gave dev macro F1 (tuned thresholds) 0.380 / 0.380 / 0.404 / 0.404 / 0.409 /
    # 0.409 / 0.405 / 0.406: lr 1e-3. A hidden layer of 512 with dropout 0.5 then raised BCE's
    # dev macro mAP and test macro F1 (seed 0: 0.366 -> 0.396; best epochs 17-20 of 20).
    "goemotions": {
        "lr": 1e-3,
        "epochs": 30,
        "batch_size": 256,
        "weight_decay": 0.01,
        "patience": 4,
        "head_hidden": 512,
        "dropout": 0.5,
    },
    # synthetic (160,000 train rows, 500 labels): linear head; BCE seed 0 at lr 1e-3 / 3e-3
    # gave dev macro F1 (tuned, out of sample) 0.484 / 0.539: lr 3e-3.
    "synthetic": {
        "lr": 3e-3,
        "epochs": 15,
        "batch_size": 256,
        "weight_decay": 0.01,
        "patience": 3,
        "head_hidden": 0,
        "dropout": 0.1,
    },
}


SPLITS = {"goemotions": ("train", "dev", "test"), "synthetic": ("train", "val", "test")}

METRIC_KEYS = (
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_map",
    "macro_recall_head",
    "macro_recall_medium",
    "macro_recall_tail",
)


# ------------------------------------------------------------------------------ data
@dataclass
class Split:
    x: np.ndarray
    y: sp.csr_matrix


@dataclass
class Data:
    name: str
    names: list[str]
    train: Split
    dev: Split
    test: Split

    @property
    def train_counts(self) -> np.ndarray:
        return np.asarray(self.train.y.sum(axis=0)).ravel().astype(np.int64)


def load_cached(dataset: str, cache: Path) -> Data:
    """The embeddings and labels written by ``study_embed.py``."""
    parts = []
    for part in SPLITS[dataset]:
        xp, yp = cache / f"{dataset}-{part}.X.npy", cache / f"{dataset}-{part}.Y.npz"
        if not xp.exists() or not yp.exists():
            raise SystemExit(
                f"{xp} missing: run benchmarks/study_embed.py --dataset {dataset} "
                f"--cache {cache} first"
            )
        parts.append(Split(np.load(xp), sp.load_npz(yp).tocsr()))
    names = (cache / f"{dataset}-labels.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return Data(dataset, names, *parts)


def quick_data(seed: int = 0, n_rows: int = 1200, n_labels: int = 12, dim: int = 16) -> Data:
    """A tiny long-tailed problem for ``--quick`` (and the smoke test): no encoder.

    Labels are drawn with Zipf-like frequencies; each label owns a random direction, and a
    row's embedding is the sum of its labels' directions plus Gaussian noise.
    """
    rng = np.random.default_rng(seed)
    p = 0.35 / np.arange(1, n_labels + 1) ** 1.3
    dense = rng.random((n_rows, n_labels)) < p
    dense[np.arange(n_rows), rng.integers(0, n_labels, n_rows)] |= rng.random(n_rows) < 0.2
    proto = rng.normal(size=(n_labels, dim))
    x = (dense @ proto + rng.normal(scale=1.0, size=(n_rows, dim))).astype(np.float32)
    y = sp.csr_matrix(dense.astype(np.uint8))
    a, b = int(n_rows * 0.7), int(n_rows * 0.85)
    names = [f"label_{i:02d}" for i in range(n_labels)]
    return Data("quick", names, Split(x[:a], y[:a]), Split(x[a:b], y[a:b]), Split(x[b:], y[b:]))


def write_split(path: Path, x: np.ndarray, y: sp.csr_matrix, names: list[str]) -> None:
    """Parquet with ``embedding`` (fixed-size float32 list) and ``labels`` (list of names)."""
    from mlbalance.io import LabelSpec, write_parquet
    from mlbalance.labels import LabelMatrix

    lm = LabelMatrix.from_sparse(y, names) if hasattr(LabelMatrix, "from_sparse") else None
    if lm is None:  # pragma: no cover - older LabelMatrix
        lm = LabelMatrix(sp.csr_matrix(y, dtype=np.uint8), tuple(names))
    emb = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x).ravel()), x.shape[1])
    y = sp.csr_matrix(y)
    y.sort_indices()
    vocab = pa.array(names, type=pa.string())
    values = vocab.take(pa.array(y.indices.astype(np.int64)))
    labels = pa.ListArray.from_arrays(pa.array(y.indptr.astype(np.int32)), values)
    table = pa.table({"embedding": emb, "labels": labels})
    write_parquet(table, path, labels=lm, spec=LabelSpec(column="labels"))


def resampled_train(data: Data, how: str, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """ML-ROS or MLSMOTE applied to the train embeddings (test and dev untouched)."""
    import warnings

    from mlbalance.labels import LabelMatrix
    from mlbalance.resample import MLROS, MLSMOTE

    lm = LabelMatrix(sp.csr_matrix(data.train.y, dtype=np.uint8), tuple(data.names))
    sampler = MLROS(random_state=seed) if how == "mlros" else MLSMOTE(random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small bags: reported in the resampler's attributes
        x_res, y_res = sampler.fit_resample(data.train.x, lm)
    return np.asarray(x_res, dtype=np.float32), y_res.matrix.tocsr()


#: Threshold modes scored for every run: the 0.5 cut; the per-label thresholds that
#: ``mlbalance train`` tunes on dev; the same smoothed toward the global threshold
#: (``--threshold-smoothing``, pseudo-count :data:`SMOOTHING`); the same with the rare-label
#: fallback (``--threshold-fallback rare``), without and with smoothing.
MODES = ("0.5", "tuned", "smoothed", "rare", "smoothed-rare")
SMOOTHING = 30.0


# ------------------------------------------------------------------------------ one run
def rfs_threshold(counts: np.ndarray, n_rows: int) -> float:
    """Repeat-factor threshold: the median train label frequency (labels below it repeat).

    LVIS's 0.001 suits ~1,200 categories; with 28 labels no label is that rare, so the
    threshold follows the data: half the labels are repeated, the rarer the more.
    """
    return float(np.median(counts[counts > 0]) / n_rows)


def crossfit_dev(
    data: Data,
    dev_scores: np.ndarray,
    min_positives: int,
    smoothing: float = 0.0,
    fallback: str = "global",
) -> dict[str, Any]:
    """Dev metrics of tuned thresholds without scoring thresholds on the rows they were fit on.

    Dev is cut into two random halves (seed 0); thresholds are tuned on one half exactly as
    ``mlbalance train`` tunes them (max F1 per label, global fallback below *min_positives*)
    and applied to the other, and vice versa. Ranking recipes by this out-of-sample figure,
    rather than by dev metrics at thresholds fit on all of dev, keeps threshold overfitting
    (large on rare labels) from deciding the winner.
    """
    from mlbalance.metrics import multilabel_metrics
    from mlbalance.thresholds import tune_thresholds

    y = data.dev.y.tocsr()
    n = y.shape[0]
    perm = np.random.default_rng(0).permutation(n)
    halves = (perm[: n // 2], perm[n // 2 :])
    shifted = np.empty_like(dev_scores)
    for fit, apply in (halves, halves[::-1]):
        tuned = tune_thresholds(
            y[fit].toarray().astype(np.uint8),
            dev_scores[fit],
            min_positives=min_positives,
            smoothing=smoothing,
            fallback=fallback,
        )
        shifted[apply] = dev_scores[apply] - np.asarray(tuned.thresholds)[None, :]
    m = multilabel_metrics(
        y, shifted, 0.0, train_counts=data.train_counts, label_names=data.names, per_label=False
    )
    return {k: m.get(k) for k in METRIC_KEYS if k != "macro_map"}


def run_one(
    data: Data, recipe: Recipe, seed: int, work: Path, files: dict[str, Path], opts: dict[str, Any]
) -> dict[str, Any]:
    """Train one recipe with ``mlbalance.train.train``; score dev and test."""
    import torch

    from mlbalance.metrics import multilabel_metrics
    from mlbalance.thresholds import tune_thresholds
    from mlbalance.train import TrainConfig, train
    from mlbalance.train.model import EmbeddingHead
    from mlbalance.train.model_folder import read_thresholds

    train_path = files["train"]
    n_train = data.train.x.shape[0]
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    if recipe.resample:
        x_res, y_res = resampled_train(data, recipe.resample, seed)
        train_path = work / f"train-{recipe.resample}-s{seed}.parquet"
        write_split(train_path, x_res, y_res, data.names)
        extra["train_rows_after_resampling"] = int(x_res.shape[0])
        n_train = x_res.shape[0]
    out = work / f"{recipe.key}-s{seed}"
    cfg = TrainConfig(
        train=str(train_path),
        val=str(files["dev"]),
        out=str(out),
        overwrite=True,
        loss=recipe.loss,
        loss_params=dict(recipe.loss_params),
        sampler=recipe.sampler,
        rfs_threshold=rfs_threshold(data.train_counts, data.train.x.shape[0]),
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        head_lr=opts["lr"],
        weight_decay=opts["weight_decay"],
        patience=opts["patience"],
        seed=seed,
        device="cpu",
        metric=opts.get("metric", "macro_map"),
        head_hidden=opts.get("head_hidden", 0),
        dropout=opts.get("dropout"),
        standardize=opts.get("standardize", True),
        log_every=10**9,
    )
    result = train(cfg, log=lambda line: None, progress=False)
    head = EmbeddingHead.load(out).eval()
    thr = read_thresholds(out / "thresholds.json", data.names)
    scores = {}
    with torch.inference_mode():
        for part in ("dev", "test"):
            x = torch.from_numpy(getattr(data, part).x)
            scores[part] = torch.sigmoid(head(x)).double().numpy()
    record: dict[str, Any] = {
        "recipe": recipe.key,
        "seed": seed,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds": round(time.perf_counter() - t0, 2),
        "train_rows": int(n_train),
        **extra,
        "history": [
            {
                k: h[k]
                for k in ("epoch", "train_loss", "val_loss", "macro_f1", "macro_recall", "micro_f1")
                if k in h
            }
            for h in result.history
        ],
        "threshold_fallback": len(result.fallback),
    }
    smoothing = float(opts.get("smoothing", SMOOTHING))
    variants = {
        "smoothed": {"smoothing": smoothing},
        "rare": {"fallback": "rare"},
        "smoothed-rare": {"smoothing": smoothing, "fallback": "rare"},
    }
    cuts: dict[str, Any] = {"0.5": 0.5, "tuned": thr}
    for mode, kw in variants.items():
        cuts[mode] = tune_thresholds(
            data.dev.y, scores["dev"], min_positives=cfg.min_positives, **kw
        ).thresholds
    for part in ("dev", "test"):
        y = getattr(data, part).y
        for mode, t in cuts.items():
            m = multilabel_metrics(
                y,
                scores[part],
                t,
                train_counts=data.train_counts,
                label_names=data.names,
                per_label=part == "test",
            )
            record[f"{part}@{mode}"] = {k: m.get(k) for k in METRIC_KEYS}
            if part == "test":
                record[f"per_label_recall@{mode}"] = [r["recall"] for r in m["per_label"]]
    record["dev@tuned-cv"] = crossfit_dev(data, scores["dev"], cfg.min_positives)
    for mode, kw in variants.items():
        record[f"dev@{mode}-cv"] = crossfit_dev(data, scores["dev"], cfg.min_positives, **kw)
    shutil.rmtree(out, ignore_errors=True)
    if recipe.resample:
        train_path.unlink(missing_ok=True)
    return record


# ------------------------------------------------------------------------------ report
def _stats(records: list[dict[str, Any]], where: str, key: str) -> tuple[float, float] | None:
    vals = [r[where][key] for r in records if r[where].get(key) is not None]
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals))


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and std over seeds of every metric, per recipe and threshold mode."""
    out: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(r["recipe"] for r in records):
        runs = [r for r in records if r["recipe"] == key]
        for mode in MODES:
            if not all(f"test@{mode}" in r for r in runs):
                continue
            row: dict[str, Any] = {"recipe": key, "thresholds": mode, "seeds": len(runs)}
            for part in ("dev", "test"):
                for m in METRIC_KEYS:
                    row[f"{part}_{m}"] = _stats(runs, f"{part}@{mode}", m)
            # out-of-sample dev macro F1: the figure recipes are ranked by
            sel = "dev@0.5" if mode == "0.5" else f"dev@{mode}-cv"
            have = [r for r in runs if sel in r]
            row["select_macro_f1"] = _stats(have, sel, "macro_f1") if have else None
            row["select_micro_f1"] = _stats(have, sel, "micro_f1") if have else None
            out[f"{key}@{mode}"] = row
    return out


def _fmt(v: tuple[float, float] | None, n: int = 2) -> str:
    if v is None:
        return "–"
    return f"{v[0]:.3f}" if n < 2 else f"{v[0]:.3f} ± {v[1]:.3f}"


def markdown_table(summary: dict[str, dict[str, Any]], part: str = "test") -> str:
    cols = [
        ("micro P", "micro_precision"),
        ("micro R", "micro_recall"),
        ("micro F1", "micro_f1"),
        ("macro P", "macro_precision"),
        ("macro R", "macro_recall"),
        ("macro F1", "macro_f1"),
        ("mAP", "macro_map"),
        ("R head", "macro_recall_head"),
        ("R medium", "macro_recall_medium"),
        ("R tail", "macro_recall_tail"),
    ]
    lines = [
        "| recipe | thr | seeds | dev macro F1 (out of sample) | "
        + " | ".join(c for c, _ in cols)
        + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for row in summary.values():
        r = RECIPES.get(row["recipe"])
        name = f"({r.letter}) {r.key}" if r else row["recipe"]
        n = row["seeds"]
        cells = [str(n), _fmt(row.get("select_macro_f1"), n)]
        cells += [_fmt(row[f"{part}_{k}"], n) for _, k in cols]
        lines.append(f"| {name} | {row['thresholds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_recipe(summary: dict[str, dict[str, Any]]) -> str:
    """The row with the highest out-of-sample dev macro F1 (never test): the default candidate.

    At 0.5 that is dev macro F1; with tuned thresholds the two-fold cross-fitted dev macro F1
    (:func:`crossfit_dev`).
    """

    def dev_f1(k: str) -> float:
        v = summary[k].get("select_macro_f1")
        return -math.inf if v is None else v[0]

    return max(summary, key=dev_f1)


def best_shipped(summary: dict[str, dict[str, Any]]) -> str:
    """:func:`best_recipe` among the rows whose thresholds ``mlbalance train`` ships.

    The trainer always tunes thresholds on val and ``predict`` applies them, so a recipe for
    ``--recipe`` comes from the tuned or smoothed rows; the 0.5 rows answer "what if one cut
    must serve every label".
    """
    rows = {k: v for k, v in summary.items() if not k.endswith("@0.5")}
    return best_recipe(rows) if rows else best_recipe(summary)


def targets(summary: dict[str, dict[str, Any]], best: str) -> list[str]:
    """Issue 7's targets, on test, for the dev-selected recipe."""

    def t(k: str, m: str) -> float:
        v = summary[k][f"test_{m}"]
        return math.nan if v is None else v[0]

    out = []
    if "bce@0.5" in summary:
        d_r = 100 * (t(best, "macro_recall") - t("bce@0.5", "macro_recall"))
        d_f = 100 * (t(best, "macro_f1") - t("bce@0.5", "macro_f1"))
        d_mi = 100 * (t(best, "micro_f1") - t("bce@0.5", "micro_f1"))
        out.append(
            f"vs BCE @0.5: macro recall {d_r:+.1f} pts (target >= +20), macro F1 "
            f"{d_f:+.1f} pts (>= +10), micro F1 {d_mi:+.1f} pts (>= 0)"
        )
    if "bce@tuned" in summary:
        d_f = 100 * (t(best, "macro_f1") - t("bce@tuned", "macro_f1"))
        d_mi = 100 * (t(best, "micro_f1") - t("bce@tuned", "micro_f1"))
        d_tail = 100 * (t(best, "macro_recall_tail") - t("bce@tuned", "macro_recall_tail"))
        out.append(
            f"vs BCE + tuned thresholds: macro F1 {d_f:+.1f} pts (target >= +1.5), "
            f"micro F1 {d_mi:+.1f} pts (>= -1), tail macro recall {d_tail:+.1f} pts "
            f"(synthetic target >= +15)"
        )
    out.append(f"macro F1 of {best}: {t(best, 'macro_f1'):.3f} (frozen-encoder target >= 0.38)")
    return out


def plots(
    records: list[dict[str, Any]],
    data: Data,
    summary: dict[str, dict[str, Any]],
    best: str,
    out: Path,
) -> list[Path]:
    """Per-label recall vs train frequency; training-loss curves of (b) vs (c)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    counts = data.train_counts
    seed0 = {(r["recipe"]): r for r in records if r["seed"] == min(x["seed"] for x in records)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    remedies = {k: v for k, v in summary.items() if not k.startswith("bce@")}
    remedy = best_recipe(remedies) if remedies else best
    lines = [
        ("bce", "0.5", "BCE @0.5", "tab:gray"),
        ("bce", "tuned", "BCE + tuned thresholds", "tab:blue"),
    ]
    extra = [(best, "tab:red")] + ([(remedy, "tab:orange")] if remedy != best else [])
    for row, colour in extra:
        key, mode = row.split("@")
        if key != "bce":
            tag = "best shipped on dev" if row == best else "best remedy on dev"
            lines.append((key, mode, f"{key} @{mode} ({tag})", colour))
    for key, mode, label, colour in lines:
        if key not in seed0:
            continue
        rec = np.array([np.nan if v is None else v for v in seed0[key][f"per_label_recall@{mode}"]])
        ok = ~np.isnan(rec) & (counts > 0)
        ax.scatter(counts[ok], rec[ok], s=12, alpha=0.6, label=label, color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("training rows of the label (log)")
    ax.set_ylabel("test recall of the label")
    ax.set_title(
        f"{data.name}: per-label recall vs label frequency "
        f"(seed {min(seed0[k]['seed'] for k in seed0)})"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "recall_vs_frequency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    curves = [r for r in records if r["recipe"] in ("wbce-inverse", "wbce-sqrt")]
    if curves:
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        colours = {"wbce-inverse": "tab:red", "wbce-sqrt": "tab:green"}
        for r in curves:
            ep = [h["epoch"] for h in r["history"]]
            lab = f"{r['recipe']} s{r['seed']}"
            c = colours[r["recipe"]]
            axes[0].plot(ep, [h["train_loss"] for h in r["history"]], color=c, label=lab)
            axes[1].plot(ep, [h["val_loss"] for h in r["history"]], color=c, label=lab)
            axes[2].plot(ep, [h.get("macro_f1") for h in r["history"]], color=c, label=lab)
        axes[0].set_title("train loss (epoch mean)")
        axes[1].set_title("dev loss")
        axes[2].set_title("dev macro F1 @0.5")
        for a in axes[:2]:
            a.set_yscale("log")
        for a in axes:
            a.set_xlabel("epoch")
        axes[2].legend(fontsize=7)
        fig.suptitle(f"{data.name}: (b) raw inverse pos_weight vs (c) sqrt-inverse, max 10")
        fig.tight_layout()
        path = out / "loss_curves.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


# ------------------------------------------------------------------------------ driver
def prepare_files(data: Data, work: Path) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for part in ("train", "dev", "test"):
        split = getattr(data, part)
        files[part] = work / f"{part}.parquet"
        write_split(files[part], split.x, split.y, data.names)
    return files


def tune_baseline(
    data: Data, files: dict[str, Path], work: Path, base: dict[str, Any], say: Any
) -> list[dict[str, Any]]:
    """Grid over lr x weight decay for BCE, seed 0, scored on dev only."""
    rows = []
    for lr in (1e-4, 3e-4, 1e-3, 3e-3):
        for wd in (0.01, 0.1):
            opts = {**base, "lr": lr, "weight_decay": wd}
            r = run_one(data, RECIPES["bce"], 0, work, files, opts)
            rows.append(
                {
                    "lr": lr,
                    "weight_decay": wd,
                    "best_epoch": r["best_epoch"],
                    "dev_macro_f1@0.5": r["dev@0.5"]["macro_f1"],
                    "dev_macro_f1@tuned": r["dev@tuned"]["macro_f1"],
                    "dev_micro_f1@tuned": r["dev@tuned"]["micro_f1"],
                }
            )
            say(json.dumps(rows[-1]))
    return rows


def finish(
    records: list[dict[str, Any]], data: Data, opts: dict[str, Any], seeds: list[int], out: Path
) -> tuple[str, list[str], list[Path]]:
    """Summary, ``table.md``, the final ``results.json`` and the plots from the run records."""
    summary = summarise(records)
    best = best_recipe(summary)
    shipped = best_shipped(summary)
    table = markdown_table(summary)
    report = [table, f"Best on dev (mean macro F1): **{best}**", ""]
    report += [f"- {line}" for line in targets(summary, best)]
    if shipped != best:
        report += [
            "",
            f"Best on dev among rows with tuned or smoothed thresholds (what `mlbalance train` "
            f"saves and `predict` applies): **{shipped}**",
            "",
        ]
        report += [f"- {line}" for line in targets(summary, shipped)]
    (out / "table.md").write_text("\n".join(report) + "\n")
    results = {
        "dataset": data.name,
        "options": opts,
        "seeds": sorted({r["seed"] for r in records}),
        "records": records,
        "summary": summary,
        "best": best,
        "best_shipped": shipped,
    }
    write_json(results, out / "results.json")
    return table, report, plots(records, data, summary, shipped, out)


def _run_order(key: tuple[str, int]) -> tuple[int, int]:
    order = list(RECIPES)
    return (order.index(key[0]) if key[0] in order else len(order), key[1])


def merge_results(out: Path, folders: list[Path]) -> dict[str, Any]:
    """Join the ``results.json`` of *folders* into ``out/results.json`` (one run per pair)."""
    path = out / "results.json"
    docs = [json.loads(path.read_text())] if path.exists() else []
    docs += [json.loads((f / "results.json").read_text()) for f in folders]
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for doc in docs:
        if doc["options"] != docs[0]["options"] or doc["dataset"] != docs[0]["dataset"]:
            raise SystemExit(f"--merge: {doc['dataset']} runs with other options than the first")
        for r in doc["records"]:
            records.setdefault((r["recipe"], r["seed"]), r)
    merged = {
        "dataset": docs[0]["dataset"],
        "options": docs[0]["options"],
        "seeds": sorted({seed for _, seed in records}),
        "records": [records[k] for k in sorted(records, key=_run_order)],
    }
    write_json(merged, path)
    return merged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", choices=["goemotions", "synthetic"], default="goemotions")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help=f"comma-separated subset of: {', '.join(RECIPES)}",
    )
    ap.add_argument("--out", type=Path, required=True, help="output folder (results, plots)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="embedding cache written by study_embed.py",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny built-in problem, 3 epochs: a smoke test of the study code",
    )
    ap.add_argument(
        "--tune",
        action="store_true",
        help="only tune lr x weight decay for the BCE baseline on dev, then stop",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in OUT/results.json and add the missing recipe/seed pairs",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild table.md and the plots from OUT/results.json (e.g. of an interrupted run)",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="add the runs of other study folders (e.g. one process per seed) to OUT, then "
        "write the report (a run already in OUT wins)",
    )
    ap.add_argument(
        "--metric",
        default="macro_map",
        help="dev metric for early stopping and the best epoch (default macro_map: free of "
        "thresholds, so it does not favour the 0.5 cut that the tuned thresholds replace)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    for k in OVERRIDABLE:
        ap.add_argument(
            "--" + k.replace("_", "-"),
            type=float if k in ("lr", "weight_decay", "dropout") else int,
            default=None,
            help=f"override the tuned {k}",
        )
    ap.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="train the head on raw embeddings (the study before standardisation)",
    )
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    keys = [k.strip() for k in args.recipes.split(",") if k.strip()]
    unknown = [k for k in keys if k not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    if args.quick:
        data = quick_data()
        opts = {"lr": 1e-2, "epochs": 3, "batch_size": 64, "weight_decay": 0.01, "patience": 2}
    else:
        data = load_cached(args.dataset, args.cache)
        opts = dict(TUNED[args.dataset])
    for k in OVERRIDABLE:
        if getattr(args, k) is not None:
            opts[k] = getattr(args, k)
    opts["metric"] = args.metric
    opts["standardize"] = args.standardize
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    if args.merge:
        merged = merge_results(args.out, args.merge)
        say_merged = f"merged {len(merged['records'])} runs into {args.out / 'results.json'}"
        print(say_merged)
        args.report_only = True
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        table, report, _ = finish(
            saved["records"], data, saved["options"], saved["seeds"], args.out
        )
        print(table + "\n".join(report[1:]))
        return 0

    def say(line: str) -> None:
        print(line, flush=True)

    say(
        f"{data.name}: train {data.train.x.shape}, dev {data.dev.x.shape[0]}, test "
        f"{data.test.x.shape[0]} rows, {len(data.names)} labels; options {opts}"
    )
    files = prepare_files(data, work)
    if args.tune:
        rows = tune_baseline(data, files, work, opts, say)
        (args.out / "tune.json").write_text(json.dumps(rows, indent=1))
        best = max(rows, key=lambda r: r["dev_macro_f1@tuned"])
        say(f"best on dev: lr {best['lr']}, weight decay {best['weight_decay']}")
        shutil.rmtree(work, ignore_errors=True)
        return 0

    records: list[dict[str, Any]] = []
    results_path = args.out / "results.json"
    if args.resume and results_path.exists():
        records = json.loads(results_path.read_text())["records"]
        say(f"resuming: {len(records)} finished run(s) in {results_path}")
    done = {(r["recipe"], r["seed"]) for r in records}
    t_all = time.perf_counter()
    for key in keys:
        for seed in seeds:
            if (key, seed) in done:
                continue
            rec = run_one(data, RECIPES[key], seed, work, files, opts)
            records.append(rec)
            say(
                f"{key:>14} seed {seed}: epochs {rec['epochs_run']:>2} "
                f"(best {rec['best_epoch']:>2})"
                f"  test macro R/F1 @0.5 {rec['test@0.5']['macro_recall']:.3f}/"
                f"{rec['test@0.5']['macro_f1']:.3f}  tuned {rec['test@tuned']['macro_recall']:.3f}/"
                f"{rec['test@tuned']['macro_f1']:.3f}  micro F1 tuned "
                f"{rec['test@tuned']['micro_f1']:.3f}  ({rec['seconds']:.0f} s)"
            )
            progress = {
                "dataset": data.name,
                "options": opts,
                "seeds": sorted({r["seed"] for r in records}),
                "records": records,
            }
            write_json(progress, results_path)
    table, report, pngs = finish(records, data, opts, seeds, args.out)
    shutil.rmtree(work, ignore_errors=True)
    say("")
    say(table)
    say("\n".join(report[1:]))
    say(
        f"wrote {results_path}, {args.out / 'table.md'}, "
        + ", ".join(str(p) for p in pngs)
        + f" in {time.perf_counter() - t_all:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
