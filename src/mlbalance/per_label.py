"""Per-label results of a model: a table sorted by train frequency and an F1-vs-frequency plot.

Both read the ``per_label`` rows of :func:`mlbalance.metrics.multilabel_metrics` (label, train
count, head/medium/tail bucket, support, precision, recall, F1, threshold), as ``mlbalance
train`` and ``mlbalance evaluate`` report them. numpy only; matplotlib is imported by
:func:`plot_per_label` alone (Agg backend, as ``analyse --plot``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mlbalance.buckets import BUCKETS

__all__ = ["format_per_label", "per_label_rows", "plot_per_label"]

_COLOURS = {"head": "#2ca02c", "medium": "#1f77b4", "tail": "#d62728", None: "#7f7f7f"}


def per_label_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``per_label`` rows of *metrics*, most frequent in training first (ties by name)."""
    rows = list(metrics.get("per_label") or [])
    return sorted(rows, key=lambda r: (-(r.get("train_count") or 0), str(r["label"])))


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_per_label(metrics: dict[str, Any], *, title: str = "per label") -> str:
    """A table of every label: train count, bucket, support, precision, recall, F1, threshold.

    Parameters
    ----------
    metrics : dict
        Output of :func:`mlbalance.metrics.evaluate_scores` (with ``per_label``).
    title : str
        The first line.

    Returns
    -------
    str
    """
    rows = per_label_rows(metrics)
    width = max([5, *(len(str(r["label"])) for r in rows)])
    conv = metrics.get("conventions") or {}
    bounds = ""
    if "head_min" in conv:
        bounds = f" (head > {conv['head_min']} train rows, tail < {conv['tail_max']})"
    lines = [
        f"{title}: {len(rows)} labels, most frequent in training first{bounds}",
        f"  {'label':<{width}} {'train':>7} {'bucket':<6} {'support':>7} {'precision':>9} "
        f"{'recall':>7} {'F1':>7} {'threshold':>9}",
    ]
    for r in rows:
        train = "-" if r.get("train_count") is None else f"{r['train_count']:,}"
        lines.append(
            f"  {r['label']!s:<{width}} {train:>7} {r.get('bucket') or '-':<6} "
            f"{r['support']:>7,} {_num(r['precision']):>9} {_num(r['recall']):>7} "
            f"{_num(r['f1']):>7} {r['threshold']:>9.4f}"
        )
    return "\n".join(lines)


def plot_per_label(
    metrics: dict[str, Any], path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Save per-label F1 (y) against train rows (x, log scale), coloured by bucket, as a PNG.

    The bucket bounds (``head_min``, ``tail_max`` of the metrics' conventions) are drawn as
    vertical lines; labels without a positive in the evaluated data have no recall and are
    drawn hollow.

    Parameters
    ----------
    metrics : dict
        Output of :func:`mlbalance.metrics.evaluate_scores` (with ``per_label`` and train
        counts).
    path : path-like
        The PNG to write (atomically).
    title : str, optional
        Figure title (default: the macro F1 and the number of labels).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlbalance.io import atomic_path

    rows = per_label_rows(metrics)
    conv = metrics.get("conventions") or {}
    fig, ax = plt.subplots(figsize=(8, 5))
    for bucket in (*BUCKETS, None):
        sel = [r for r in rows if r.get("bucket") == bucket]
        if not sel:
            continue
        x = np.maximum([r.get("train_count") or 0 for r in sel], 0.8)  # 0 rows sits under 1
        y = np.array([r["f1"] for r in sel], dtype=float)
        has_pos = np.array([r["support"] > 0 for r in sel])
        colour = _COLOURS[bucket]
        name = bucket or "no bucket"
        ax.scatter(x[has_pos], y[has_pos], s=22, color=colour, label=f"{name} ({len(sel)})")
        if (~has_pos).any():
            ax.scatter(x[~has_pos], y[~has_pos], s=22, facecolors="none", edgecolors=colour)
    if "head_min" in conv:
        ax.axvline(conv["head_min"], color=_COLOURS["head"], ls="--", lw=1,
                   label=f"head > {conv['head_min']} rows")  # fmt: skip
        ax.axvline(conv["tail_max"], color=_COLOURS["tail"], ls="--", lw=1,
                   label=f"tail < {conv['tail_max']} rows")  # fmt: skip
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training rows with the label (log)")
    ax.set_ylabel("F1 at the threshold(s) of the report")
    macro = metrics.get("macro_f1")
    ax.set_title(
        title or f"Per-label F1 vs train frequency: {len(rows)} labels, macro F1 {_num(macro)}"
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
