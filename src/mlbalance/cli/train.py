"""``mlbalance train``: fine-tune an encoder (or a head on embeddings) for multilabel text."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlbalance.cli._options import add_json_argument, emit_json

DESCRIPTION = """\
Train a multilabel classifier on a split from `mlbalance split` / `resample`: a Hugging Face
encoder with dropout and a linear head on the pooled output (saved so that
AutoModelForSequenceClassification and transformers.pipeline load it), or, when the data has
an embedding column, a linear head alone. Imbalance remedies: --loss (weighted-bce, focal, asl,
db), --sampler (repeat-factor, class-aware), head bias from label priors, separate head
learning rate, --train-last-layers, and per-label thresholds tuned on val.

Every option can also come from --config FILE (YAML or JSON, keys as the flags). Runs
unchanged under `torchrun --nproc_per_node N -m mlbalance train ...` (DDP).

example:
  mlbalance train --train splits/train --val splits/val --test splits/test \\
      --model all-MiniLM-L6-v2 --loss asl --sampler repeat-factor --out model/
"""


def register(subparsers: Any) -> None:
    """Add the ``train`` command."""
    from mlbalance.train.config import add_config_arguments

    parser = subparsers.add_parser(
        "train",
        help="train a multilabel text classifier with imbalance remedies",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def format_summary(result: Any, cfg: Any) -> str:
    """The one-screen summary printed at the end of a run."""
    from mlbalance.metrics import format_metrics

    d = result.data
    lines = [
        f"mlbalance train: {len(result.history)} epoch(s), best epoch {result.best_epoch} "
        f"({cfg.metric} {result.best_value:.4f}){', stopped early' if result.stopped_early else ''}"
        f"; {result.seconds:.1f} s, {result.train_samples_per_s:,.0f} train rows/s",
        f"  data: train {d['train_rows']:,} rows, val {d['val_rows']:,}"
        + (f", test {d['test_rows']:,}" if d["test_rows"] else "")
        + f"; {len(result.names)} labels; loss {cfg.loss}, sampler {cfg.sampler}",
    ]
    if d.get("max_length"):
        tr = d["truncated"]
        lines.append(
            f"  text: truncated at {d['max_length']} tokens: {tr['train_first_epoch']:,} "
            f"train rows (epoch 1), {tr['val']:,} val; empty: "
            f"{d['empty_text']['train']:,} train, {d['empty_text']['val']:,} val"
        )
    for which, labels in d["unseen_labels"].items():
        if labels:
            lines.append(
                f"  {which}: {len(labels)} label(s) train never saw, left out: "
                + ", ".join(list(labels)[:5])
            )
    lines.append(
        f"  thresholds: tuned per label on val ({cfg.threshold_mode}); "
        f"{len(result.fallback)} label(s) fell back (too few val positives)"
    )
    m = result.metrics
    lines.append(format_metrics(m["val_at_0.5"], title="val, threshold 0.5"))
    lines.append(format_metrics(m["val"], title="val, tuned thresholds"))
    if "test" in m:
        lines.append(format_metrics(m["test_at_0.5"], title="test, threshold 0.5"))
        lines.append(format_metrics(m["test"], title="test, tuned thresholds"))
    lines.append(f"  model, tokenizer, thresholds.json, metrics.json -> {result.out}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance train``."""
    from mlbalance.train.config import config_from_args
    from mlbalance.train.trainer import train

    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "json")}
    cfg = config_from_args(given)
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(format_summary(result, cfg))
        from mlbalance.train.trainer import _jsonable

        emit_json(_jsonable(result.to_dict()), args.json)
    return 0
