"""MultilabelTrainer under torchrun: 2 CPU processes (gloo), the tiny BERT, a few seconds.

Each rank's loader draws exactly its share of mlbalance's repeat-factor epoch (accelerate's
batch re-sharding is a pass-through), the two shares together are the whole epoch, and both
ranks tune the same thresholds on the gathered eval scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

WORKER = r"""
import json, sys
import datasets, transformers
datasets.disable_progress_bars(); transformers.logging.set_verbosity_error()
from mlbalance.hf import MultilabelTrainer, load_split
splits_dir, tiny, out = sys.argv[1:4]
d = load_split(splits_dir)
names = d["train"].features["labels"].feature.names
tok = transformers.AutoTokenizer.from_pretrained(tiny)
model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny, num_labels=len(names))
enc = d.map(lambda b: tok(b["text"], truncation=True, max_length=16), batched=True)
args = transformers.TrainingArguments(
    out, max_steps=2, per_device_train_batch_size=8, report_to=[], use_cpu=True,
    save_strategy="no", disable_tqdm=True, seed=0,
)
tr = MultilabelTrainer(model=model, args=args, train_dataset=enc["train"],
                       eval_dataset=enc["val"], processing_class=tok, rfs_threshold=0.2)
loader = tr.get_train_dataloader()
rows = [i for batch in loader.batch_sampler for i in batch]
sampler = tr._get_train_sampler()
tr.train()
tr.evaluate()
scores = tr.predict(enc["val"]).predictions
with open(f"{out}/rank{args.process_index}.json", "w") as f:
    json.dump({"rows": [int(i) for i in rows], "len": len(sampler), "rank": sampler.rank,
               "replicas": sampler.num_replicas, "thresholds": tr.thresholds_.thresholds.tolist(),
               "scored": int(scores.shape[0])}, f)
# leave the group accelerate joined: a process that exits inside it aborts now and then
# ("terminate called without an active exception", 1 run in 20 here)
import torch.distributed as dist
if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    from mlbalance.io import LabelSpec, read_labels, write_parquet
    from mlbalance.samplers import RepeatFactorSampler
    from mlbalance.synth import label_names, make_synthetic_table
    from mlbalance.train.tiny import make_tiny_model

    table = make_synthetic_table(300, 8, 0, words_per_row=6)
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, (start, stop) in {"train": (0, 220), "val": (220, 300)}.items():
        write_parquet(table.slice(start, stop - start), splits / f"{name}.parquet",
                      labels=label_names(8), spec=LabelSpec())  # fmt: skip
    tiny = make_tiny_model(tmp_path / "tiny", table.column("text").to_pylist(), hidden_size=16,
                           num_layers=1, num_heads=2)  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(
        os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(worker), str(splits), str(tiny), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["replicas"]) for r in ranks] == [(0, 2), (1, 2)]
    for r in ranks:
        assert len(r["rows"]) == r["len"]  # this rank's share, not re-sharded by accelerate
        assert r["scored"] == 80  # eval scores gathered from both ranks
    whole = RepeatFactorSampler(read_labels(splits / "train.parquet"), threshold=0.2, seed=0)
    epoch = Counter(whole.epoch_indices(0).tolist())
    drawn = Counter(ranks[0]["rows"] + ranks[1]["rows"])
    assert not epoch - drawn  # every row of the epoch is drawn by one of the ranks
    assert sum((drawn - epoch).values()) <= 1  # at most the one padding row
    assert ranks[0]["thresholds"] == ranks[1]["thresholds"]
