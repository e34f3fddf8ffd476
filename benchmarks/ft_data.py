"""The three data sets of the fine-tuned recipe study (``recipes_ft.py prepare``).

* ``goemotions`` — GoEmotions (Demszky et al. 2020) train/dev/test as shipped, as Parquet with
  the label names in a list column and the 28-label vocabulary in the metadata.
* ``lt-goemotions`` — a long-tailed GoEmotions: its train split subsampled so that label
  counts follow a power law in rank (:func:`long_tail_targets`, :func:`long_tail_rows`);
  dev and test untouched.
* ``synthetic`` — ``mlbalance synth`` (500 labels, power-law frequencies, rarest 5 rows),
  split by ``mlbalance split``.

Every data set folder holds ``train.parquet``, ``dev.parquet``, ``test.parquet``,
``eval.parquet`` (dev rows then test rows with their text only: one ``mlbalance predict`` call
scores both), ``labels-dev.npz`` / ``labels-test.npz`` (scipy CSR, the label order of
``dataset.json``) and ``dataset.json`` (rows, label names, train counts, how it was built).
A folder is written once (atomically) and reused.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from mlbalance.io import LabelSpec, output_dir, read_dataset, write_json, write_parquet
from mlbalance.labels import LabelMatrix

DATASETS = ("goemotions", "lt-goemotions", "synthetic")
SPLITS = ("train", "dev", "test")
INFO = "dataset.json"


# ------------------------------------------------------------------------------ long tail
def long_tail_targets(counts: np.ndarray, tail_rows: int) -> np.ndarray:
    """Power-law target count of each label: ``n_head * rank ** -alpha``.

    Labels are ranked by their count (most frequent first, rank 1; ties by index). The most
    frequent label keeps its count ``n_head``; ``alpha = ln(n_head / tail_rows) / ln(L)``
    brings the rarest label (rank ``L``) to ``tail_rows``, so the imbalance ratio is
    ``n_head / tail_rows``. A target never exceeds the label's own count.
    """
    counts = np.asarray(counts, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    n_head, n_labels = int(counts[order[0]]), counts.size
    alpha = math.log(n_head / tail_rows) / math.log(n_labels)
    ranks = np.empty(n_labels, dtype=np.float64)
    ranks[order] = np.arange(1, n_labels + 1)
    targets = np.rint(n_head * ranks**-alpha).astype(np.int64)
    return np.minimum(targets, counts)


def long_tail_rows(labels: LabelMatrix, targets: np.ndarray, seed: int) -> np.ndarray:
    """Rows to keep so that label counts come close to *targets* (sorted row indices).

    Labels are filled from the smallest target up (in the spirit of the tail-first sampling
    used to build VOC-MLT and COCO-MLT, Wu et al. 2020): each label takes rows that carry it,
    in a seeded random order, until it reaches its target, and only rows none of whose other
    labels is already full — so a frequent label does not push a rare one past its target
    through co-occurrence. Counts can fall short of a target when no such row is left, and
    can exceed the targets of labels that ride along on a rarer label's rows (reported by
    :func:`build_long_tail`). Rows without labels are dropped.
    """
    csr = labels.matrix.tocsr()
    csc = csr.tocsc()
    rng = np.random.default_rng(seed)
    position = np.empty(labels.n_rows, dtype=np.int64)
    position[rng.permutation(labels.n_rows)] = np.arange(labels.n_rows)
    kept = np.zeros(labels.n_rows, dtype=bool)
    count = np.zeros(labels.n_labels, dtype=np.int64)
    for c in np.argsort(targets, kind="stable"):
        rows = csc.indices[csc.indptr[c] : csc.indptr[c + 1]]
        for row in rows[np.argsort(position[rows], kind="stable")]:
            if count[c] >= targets[c]:
                break
            if kept[row]:
                continue
            others = csr.indices[csr.indptr[row] : csr.indptr[row + 1]]
            if np.any((count[others] >= targets[others]) & (others != c)):
                continue
            kept[row] = True
            count[others] += 1
    return np.flatnonzero(kept)


def check_long_tail(counts: np.ndarray, min_tail: int = 5, max_tail: int = 20, ratio: int = 200):
    """The issue's requirements: rarest labels with 5-20 rows, imbalance ratio >= 200."""
    rarest, head = int(counts.min()), int(counts.max())
    problems = []
    if not min_tail <= rarest <= max_tail:
        problems.append(f"rarest label has {rarest} rows (want {min_tail}-{max_tail})")
    if head < ratio * max(rarest, 1):
        problems.append(f"imbalance ratio {head / max(rarest, 1):.0f} (want >= {ratio})")
    if problems:
        raise SystemExit("lt-goemotions: " + "; ".join(problems))


# ------------------------------------------------------------------------------ writing
def labels_array(lm: LabelMatrix) -> pa.Array:
    """The label matrix as a list<string> column of label names."""
    y = lm.matrix.tocsr()
    y.sort_indices()
    names = pa.array(list(lm.names), type=pa.string())
    values = names.take(pa.array(y.indices.astype(np.int64)))
    return pa.ListArray.from_arrays(pa.array(y.indptr.astype(np.int32)), values)


def _write_split(path: Path, text: list[str], lm: LabelMatrix, extra: dict[str, Any]) -> None:
    columns: dict[str, Any] = {"text": pa.array(text, type=pa.string()), "labels": labels_array(lm)}
    columns.update(extra)
    write_parquet(pa.table(columns), path, labels=lm, spec=LabelSpec(column="labels"))


def _finish(folder: Path, parts: dict[str, tuple[list[str], LabelMatrix]], info: dict) -> None:
    """Write the split files, eval.parquet, the label matrices and dataset.json."""
    names = list(parts["train"][1].names)
    for split, (text, lm) in parts.items():
        if split in ("train", "dev", "test") and not (folder / f"{split}.parquet").exists():
            _write_split(folder / f"{split}.parquet", text, lm, {})
        if split != "train":
            sp.save_npz(folder / f"labels-{split}.npz", lm.matrix.tocsr().astype(np.uint8))
    eval_text = parts["dev"][0] + parts["test"][0]
    split_col = ["dev"] * len(parts["dev"][0]) + ["test"] * len(parts["test"][0])
    table = pa.table({"text": pa.array(eval_text, type=pa.string()), "split": split_col})
    pq.write_table(table, folder / "eval.parquet")
    train = parts["train"][1]
    info.update(
        {
            "labels": names,
            "rows": {s: parts[s][1].n_rows for s in SPLITS},
            "train_counts": train.counts().astype(int).tolist(),
        }
    )
    write_json(info, folder / INFO)


def _read(path: Path, spec: LabelSpec | None, names: list[str] | None) -> tuple[list, LabelMatrix]:
    ds = read_dataset(path, spec, vocabulary=names)
    return ds.table.column("text").to_pylist(), ds.labels


def _goemotions_parts(source: Path) -> dict[str, tuple[list[str], LabelMatrix]]:
    names_file = source / "labels.txt"
    if not names_file.exists():
        raise SystemExit(f"{names_file}: missing (--goemotions must hold train/dev/test.tsv)")
    names = [n.strip() for n in names_file.read_text(encoding="utf-8").splitlines() if n.strip()]
    spec = LabelSpec(sep=",", names_file=str(names_file), header_names=("text", "labels", "id"))
    return {s: _read(source / f"{s}.tsv", spec, names) for s in SPLITS}


def build_goemotions(folder: Path, source: Path) -> None:
    """GoEmotions as shipped."""
    parts = _goemotions_parts(source)
    _finish(folder, parts, {"name": "goemotions", "built": f"GoEmotions {source.name} as shipped"})


def build_long_tail(folder: Path, source: Path, seed: int, tail_rows: int) -> None:
    """GoEmotions with its train split subsampled to a power law (dev and test untouched)."""
    parts = _goemotions_parts(source)
    text, train = parts["train"]
    targets = long_tail_targets(train.counts(), tail_rows)
    keep = long_tail_rows(train, targets, seed)
    sub = train.take(keep)
    counts = sub.counts()
    check_long_tail(counts)
    parts["train"] = ([text[i] for i in keep], sub)
    built = (
        f"GoEmotions train subsampled to a power law in label rank (seed {seed}, rarest "
        f"target {tail_rows} rows): {len(keep):,} of {train.n_rows:,} rows; dev and test as "
        "shipped"
    )
    info = {"name": "lt-goemotions", "built": built, "seed": seed}
    info["targets"] = targets.astype(int).tolist()
    _finish(folder, parts, info)


def build_synthetic(folder: Path, rows: int, labels: int, ratios: str, seed: int) -> None:
    """``mlbalance synth`` + ``mlbalance split`` (through the CLI, as a user would)."""
    cli = [sys.executable, "-m", "mlbalance"]
    whole = folder / "synth.parquet"
    synth = ["synth", "--rows", str(rows), "--labels", str(labels), "--seed", str(seed)]
    subprocess.run([*cli, *synth, "--out", str(whole)], check=True)
    split_dir = folder / "split"
    split = ["split", str(whole), "--out", str(split_dir), "--ratios", ratios, "--seed", str(seed)]
    subprocess.run([*cli, *split, "--names", ",".join(SPLITS)], check=True)
    for s in SPLITS:
        shutil.move(split_dir / f"{s}.parquet", folder / f"{s}.parquet")
    shutil.move(split_dir / "__mlbalance__" / "split_report.json", folder / "split_report.json")
    shutil.rmtree(split_dir)
    whole.unlink()
    parts = {s: _read(folder / f"{s}.parquet", None, None) for s in SPLITS}
    built = f"mlbalance synth --rows {rows} --labels {labels} --seed {seed}; split {ratios}"
    _finish(folder, parts, {"name": "synthetic", "built": built, "seed": seed})


def prepare(name: str, root: Path, opts: dict[str, Any], say: Any = print) -> Path:
    """Build data set *name* under *root* unless it is there; return its folder."""
    folder = root / name
    if (folder / INFO).exists():
        say(f"{name}: {folder} exists, kept")
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with output_dir(folder, overwrite=True) as tmp:
        if name == "goemotions":
            build_goemotions(tmp, Path(opts["goemotions"]))
        elif name == "lt-goemotions":
            build_long_tail(tmp, Path(opts["goemotions"]), opts["seed"], opts["lt_tail_rows"])
        elif name == "synthetic":
            build_synthetic(
                tmp,
                opts["synthetic_rows"],
                opts.get("synthetic_labels", 500),
                opts["synthetic_ratios"],
                opts["seed"],
            )
        else:
            raise SystemExit(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    info = load_info(folder)
    counts = np.asarray(info["train_counts"])
    rows = info["rows"]
    say(
        f"{name}: train {rows['train']:,} / dev {rows['dev']:,} / test {rows['test']:,} rows, "
        f"{counts.size} labels; train label counts {int(counts.max()):,} .. {int(counts.min())} "
        f"(imbalance {counts.max() / max(counts.min(), 1):.0f}x) -> {folder}"
    )
    if name == "lt-goemotions":
        order = np.argsort(-counts, kind="stable")
        listing = ", ".join(f"{info['labels'][i]} {counts[i]}" for i in order)
        say(f"  label counts: {listing}")
    return folder


def load_info(folder: Path) -> dict[str, Any]:
    """``dataset.json`` of a prepared data set."""
    return json.loads((folder / INFO).read_text(encoding="utf-8"))


def load_labels(folder: Path, split: str) -> sp.csr_matrix:
    """The dev or test label matrix (CSR uint8, the order of ``dataset.json``'s labels)."""
    return sp.load_npz(folder / f"labels-{split}.npz").tocsr()
