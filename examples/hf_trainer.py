"""An ordinary Hugging Face text-classification script, with mlbalance's ``MultilabelTrainer``.

Tokenise, ``TrainingArguments``, ``Trainer``: the usual script. Two lines differ: the splits
come from a ``mlbalance split`` folder through :func:`mlbalance.hf.load_split` (the labels as
``ClassLabel`` ids, the vocabulary kept), and ``Trainer`` is
:class:`mlbalance.hf.MultilabelTrainer`, which brings mlbalance's loss, sampler, prior bias,
per-label thresholds (saved as ``thresholds.json``) and head/medium/tail metrics. Runs on CPU
in seconds with a tiny model, no downloads::

    .venv/bin/mlbalance synth --rows 2000 --labels 30 --out /tmp/hf/data.parquet
    .venv/bin/mlbalance split /tmp/hf/data.parquet --out /tmp/hf/splits
    .venv/bin/python -c "import pyarrow.parquet as pq; from mlbalance.train.tiny import \\
        make_tiny_model; make_tiny_model('/tmp/hf/tiny', \\
        pq.read_table('/tmp/hf/data.parquet').column('text').to_pylist())"
    .venv/bin/python examples/hf_trainer.py --data /tmp/hf/splits --model /tmp/hf/tiny \\
        --out /tmp/hf/model --epochs 2
    # the saved folder is a mlbalance model folder: predict and evaluate read it
    .venv/bin/mlbalance predict --model /tmp/hf/model --data /tmp/hf/splits/test.parquet \\
        --out /tmp/hf/pred.parquet
    .venv/bin/mlbalance evaluate --model /tmp/hf/model --data /tmp/hf/splits/test.parquet

With a real encoder (``--model sentence-transformers/all-MiniLM-L6-v2``) and a GPU, add
``--bf16``. ``--loss``, ``--sampler`` and ``--recipe`` take the values of ``mlbalance train``.

Needs transformers >= 4.46 (``processing_class=``, ``eval_strategy=``); tested with
transformers 5.25 / datasets 5.2 and transformers 4.57.6 / datasets 3.6.0.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a mlbalance split folder (train/val/test)")
    p.add_argument("--model", required=True, help="encoder: a local folder or a hub name")
    p.add_argument("--out", required=True, help="output folder (checkpoints, final model)")
    p.add_argument("--epochs", type=float, default=3.0, help="passes over train (default 3)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (overrides)")
    p.add_argument("--batch-size", type=int, default=32, help="rows per batch (default 32)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text (default 128)")
    p.add_argument("--recipe", default="default", help="mlbalance recipe (default: default)")
    p.add_argument("--loss", default=None, help="mlbalance loss (default: the recipe's)")
    p.add_argument("--sampler", default=None, help="repeat-factor, class-aware or none")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate on val (tuning the thresholds) and test, save; return the metrics."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainingArguments,
        set_seed,
    )

    from mlbalance.hf import MultilabelTrainer, load_split

    args = parse_args(argv)
    set_seed(args.seed)
    splits = load_split(args.data)  # was: load_dataset(...)
    names = splits["train"].features["labels"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        problem_type="multi_label_classification",
    )

    def tokenize(batch: dict[str, Any]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    encoded = splits.map(tokenize, batched=True)
    # 6% of the steps warm up: a float warmup_steps in transformers 5, warmup_ratio in 4.x
    fraction = "warmup_ratio" in inspect.signature(TrainingArguments).parameters
    warmup = {"warmup_ratio" if fraction else "warmup_steps": 0.06}
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=4 * args.batch_size,
        learning_rate=args.lr,
        **warmup,
        weight_decay=0.01,
        eval_strategy="epoch" if args.max_steps < 0 else "steps",
        eval_steps=max(args.max_steps, 1),
        save_strategy="epoch" if args.max_steps < 0 else "steps",
        save_steps=max(args.max_steps, 1),
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",  # at the tuned thresholds
        bf16=args.bf16,
        seed=args.seed,
        report_to=[],
    )
    options = {k: v for k, v in (("loss", args.loss), ("sampler", args.sampler)) if v}
    trainer = MultilabelTrainer(  # was: Trainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["val"],
        processing_class=tokenizer,
        recipe=args.recipe,
        max_length=args.max_length,  # saved with the model: predict cuts texts the same way
        **options,
    )
    trainer.train()
    metrics = trainer.evaluate()  # tunes the per-label thresholds on val
    if "test" in encoded:
        metrics.update(trainer.evaluate(encoded["test"], metric_key_prefix="test"))
    trainer.save_model(args.out)  # + thresholds.json and label_counts.json
    print(json.dumps(metrics, indent=1), file=sys.stderr)
    return metrics


if __name__ == "__main__":
    main()
    import torch.distributed as dist

    if dist.is_initialized():  # under torchrun: leave the group before exiting (a process
        dist.destroy_process_group()  # that exits inside it can abort at shutdown)
