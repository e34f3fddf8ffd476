"""Training throughput: mlbalance's loop against a plain Hugging Face Trainer, and the data path.

Same model (a small random BERT), same data (the synthetic long-tailed set, 500 labels), same
batch size, max length, optimizer steps and threads, measured side by side in one process,
interleaved (HF, mlbalance, HF, mlbalance, ...) so background load hits both alike; the
median of the repeats is reported.

* mlbalance: ``mlbalance.train.train`` (text read from Parquet shards and tokenised on the fly
  inside the loop, BCE, no sampler); its train-loop rows/s (evaluation excluded).
* Hugging Face: ``transformers.Trainer`` on a ``datasets.Dataset`` tokenised beforehand with
  ``map`` (the usual recipe; the tokenising is *not* in its timed loop), padded by
  ``DataCollatorWithPadding``, ``problem_type="multi_label_classification"``; its
  ``train_samples_per_second``.
* Data path alone: read the shard folder, repeat-factor sampling, tokenise and pad every batch
  of an epoch, no model: rows/s, against the rows/s the model consumes.

Run::

    .venv/bin/python benchmarks/bench_train.py            # ~6 min on 2 busy cores
    .venv/bin/python benchmarks/bench_train.py --steps 300 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("MLBALANCE_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_data(folder: Path, rows: int, labels: int, shards: int, seed: int) -> dict[str, Path]:
    """Synthetic train shards + a small val file + a tiny BERT folder."""
    from mlbalance.io import LabelSpec, write_parquet
    from mlbalance.synth import label_names, make_synthetic_table
    from mlbalance.train.tiny import make_tiny_model

    table = make_synthetic_table(rows + 256, labels, seed)
    names = label_names(labels)
    train_dir = folder / "train"
    train_dir.mkdir(parents=True)
    per = -(-rows // shards)
    for i in range(shards):
        part = table.slice(i * per, min(per, rows - i * per))
        write_parquet(part, train_dir / f"part-{i:03d}.parquet", labels=names, spec=LabelSpec())
    write_parquet(table.slice(rows, 256), folder / "val.parquet", labels=names, spec=LabelSpec())
    model = make_tiny_model(
        folder / "bert",
        table.column("text").to_pylist()[:rows],
        vocab_size=8000,
        hidden_size=128,
        num_layers=2,
        num_heads=2,
        seed=seed,
    )
    return {"train": train_dir, "val": folder / "val.parquet", "model": model}


def run_mlbalance(paths: dict[str, Path], out: Path, args: argparse.Namespace) -> float:
    from mlbalance.train.config import TrainConfig
    from mlbalance.train.trainer import train

    cfg = TrainConfig(
        train=str(paths["train"]),
        val=str(paths["val"]),
        out=str(out),
        model=str(paths["model"]),
        epochs=1,
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=5e-5,
        head_lr=5e-5,
        warmup_ratio=0.0,
        prior_bias=False,
        log_every=50,
        seed=0,
        overwrite=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg, log=lambda s: None, progress=False)
    return result.train_samples_per_s


def run_hf(paths: dict[str, Path], out: Path, args: argparse.Namespace) -> float:
    import datasets
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from mlbalance.io import read_dataset
    from mlbalance.train.model import quiet_transformers

    datasets.disable_progress_bars()
    ds = read_dataset(paths["train"], columns=["text"])
    names = list(ds.labels.names)
    y = ds.labels.matrix.toarray().astype(np.float32)
    tok = AutoTokenizer.from_pretrained(paths["model"])
    hf = datasets.Dataset.from_dict(
        {"text": ds.table.column("text").to_pylist(), "labels": list(y)}
    )
    hf = hf.map(
        lambda b: tok(b["text"], truncation=True, max_length=args.max_length),
        batched=True,
        remove_columns=["text"],
    )
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(
            paths["model"], num_labels=len(names), problem_type="multi_label_classification"
        )
    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=5e-5,
        warmup_steps=0,
        weight_decay=0.01,
        logging_steps=50,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = Trainer(
        model=model, args=targs, train_dataset=hf, data_collator=DataCollatorWithPadding(tok)
    )
    with quiet_transformers():
        metrics = trainer.train().metrics
    return float(metrics["train_samples_per_second"])


def data_path_rate(paths: dict[str, Path], args: argparse.Namespace) -> tuple[float, int]:
    """Rows/s of: read shards, repeat-factor sample, tokenise + pad every batch."""
    import numpy as np

    from mlbalance.samplers import RepeatFactorSampler
    from mlbalance.train.data import TextBatches, batch_indices, load_split, loader
    from mlbalance.train.model import load_tokenizer

    t0 = time.perf_counter()
    split = load_split(str(paths["train"]))
    tok = load_tokenizer(str(paths["model"]))
    ds = TextBatches(split.texts, split.labels.matrix, tok, args.max_length)
    sampler = RepeatFactorSampler(split.labels, threshold=0.001, seed=0)
    sampler.set_epoch(0)
    order = np.asarray(sampler.epoch_indices())
    n = 0
    for batch in loader(ds, batch_indices(order, args.batch_size)):
        n += len(batch["index"])
    return n / (time.perf_counter() - t0), n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000, help="training rows")
    p.add_argument("--labels", type=int, default=500)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="runs of each trainer (median)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for both (1: stable on a shared machine)",
    )
    args = p.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            f"building data: {args.rows:,} rows, {args.labels} labels, {args.shards} shards; "
            "random BERT 2 layers x 128 hidden",
            file=sys.stderr,
        )
        paths = make_data(folder, args.rows, args.labels, args.shards, seed=0)
        hf_rates, ml_rates = [], []
        for r in range(args.repeats):
            hf_rates.append(run_hf(paths, folder / f"hf{r}", args))
            ml_rates.append(run_mlbalance(paths, folder / f"ml{r}", args))
            print(
                f"repeat {r + 1}: HF Trainer {hf_rates[-1]:.1f} rows/s, mlbalance "
                f"{ml_rates[-1]:.1f} rows/s",
                file=sys.stderr,
            )
        data_rate, data_rows = data_path_rate(paths, args)
    hf, ml = statistics.median(hf_rates), statistics.median(ml_rates)
    print(
        f"\ntrain throughput: {args.steps} steps x batch {args.batch_size}, max_length "
        f"{args.max_length}, {args.threads} thread(s), torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    print(f"| {'trainer':<32} | {'rows/s (median)':>15} | {'runs':<24} |")
    print(f"|{'-' * 34}|{'-' * 17}|{'-' * 26}|")
    print(
        f"| {'Hugging Face Trainer':<32} | {hf:>15.1f} | "
        f"{', '.join(f'{x:.1f}' for x in hf_rates):<24} |"
    )
    print(
        f"| {'mlbalance train':<32} | {ml:>15.1f} | {', '.join(f'{x:.1f}' for x in ml_rates):<24} |"
    )
    pairs = [m / h for m, h in zip(ml_rates, hf_rates)]
    print(
        f"\nmlbalance / HF Trainer: {ml / hf:.2f}x of the medians; per interleaved pair "
        f"{', '.join(f'{r:.2f}' for r in pairs)} (median {statistics.median(pairs):.2f}x; "
        "target >= 0.95x)"
    )
    print(
        f"data path alone (read {args.shards} shards, repeat-factor sample, tokenise, pad; "
        f"{data_rows:,} rows): {data_rate:,.0f} rows/s = {data_rate / ml:.1f}x the rate the "
        "model consumes (target >= 5x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
