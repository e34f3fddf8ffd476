"""``mlbalance demo``: the whole pipeline on the built-in synthetic data.

Each landed stage adds one ``stage_<name>(ctx)`` function here and its name to ``STAGES``, so
the demo always shows every stage, in pipeline order. A stage reads what earlier stages wrote
(paths in ``ctx``), prints a short summary, and keeps to ~30 s on 2 cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STAGES", "TORCH_STAGES", "DemoContext", "run_demo"]

#: Stages that need the optional training packages (torch): ``pip install "mlbalance[train]"``.
TORCH_STAGES = ("sample", "train", "folds")


@dataclass
class DemoContext:
    """What the stages share: the output folder, sizes, seed and the paths written so far."""

    out: Path
    rows: int = 20_000
    labels: int = 500
    seed: int = 0
    paths: dict[str, Path] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """A path under the demo folder."""
        return self.out / name


def _header(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def stage_synth(ctx: DemoContext) -> None:
    """Generate the synthetic long-tailed dataset."""
    from mlbalance.synth import write_synthetic

    path = ctx.path("data.parquet")
    table = write_synthetic(path, ctx.rows, ctx.labels, ctx.seed, overwrite=True)
    ctx.paths["data"] = path
    print(f"synthetic dataset: {table.num_rows:,} rows, {ctx.labels} labels -> {path}")


def stage_analyse(ctx: DemoContext) -> None:
    """Measure how skewed the data is."""
    from mlbalance.analyse import analyse, format_summary, plot_report, write_per_label_csv
    from mlbalance.io import read_labels, write_json

    y = read_labels(ctx.paths["data"])
    report = analyse(y)
    ctx.results["analyse"] = report
    print(format_summary(report, source=str(ctx.paths["data"])))
    write_json(report, ctx.path("analyse.json"))
    write_per_label_csv(report, ctx.path("analyse_labels.csv"))
    plot_report(report, y, ctx.path("analyse.png"))
    print(f"-> {ctx.path('analyse.json')}, analyse_labels.csv, analyse.png")


def stage_split(ctx: DemoContext) -> None:
    """Iterative stratified train/val/test split (0.8/0.1/0.1)."""
    from mlbalance.split.files import split_to_folder

    out = ctx.path("split")
    report, doc = split_to_folder(
        ctx.paths["data"], out, ratios=[0.8, 0.1, 0.1], seed=ctx.seed, overwrite=True
    )
    for name, file in doc["files"].items():
        ctx.paths[name] = out / file
    ctx.paths["split"] = out
    ctx.results["split"] = doc
    print(report.summary())
    print(
        f"-> {out}/{{train,val,test}}.parquet, __mlbalance__/split_report.json "
        f"(split in {doc['seconds']['split']:.2f} s)"
    )


def _resample_summary(manifest: dict[str, Any], out: Path) -> str:
    """A few lines from a resampling manifest: rows in and out, imbalance before and after."""
    rep = manifest["report"]
    before, after = manifest["measures_before"], manifest["measures_after"]
    lines = [
        f"{manifest['method']} -> {out}: {rep['input_rows']:,} rows in, "
        f"{rep['output_rows']:,} rows out in {len(manifest['shards'])} shard(s) "
        f"({rep['extra_copies']:,} extra copies)",
        *(
            f"  {key:<8} {before[key]:>10.4g} -> {after[key]:.4g}"
            for key in ("mean_ir", "max_ir", "cvir", "scumble")
        ),
    ]
    return "\n".join(lines)


def stage_resample(ctx: DemoContext) -> None:
    """ML-ROS on the train split only, written as balanced shards; then verify them."""
    from mlbalance.io.shards import verify_shards
    from mlbalance.resample import MLROS
    from mlbalance.resample.dataset import resample_dataset

    source = ctx.paths.get("train", ctx.paths["data"])
    out = ctx.path("resample")
    run = resample_dataset(
        source,
        out,
        MLROS(percentage=25, random_state=ctx.seed),
        method="ml-ros",
        rows_per_shard=10_000,
        overwrite=True,
        progress=False,
    )
    ctx.paths["resample"] = out
    if run.manifest is None:
        print(run.nothing_to_do)
        return
    ctx.results["resample"] = run.manifest
    print(_resample_summary(run.manifest, out))
    check = verify_shards(out, progress=False)
    print(
        f"verify: {'OK' if check['ok'] else 'FAILED'} ({check['shards']} shards, "
        f"{check['rows']:,} rows); val/test stay untouched"
    )


def stage_sample(ctx: DemoContext) -> None:
    """What the repeat-factor and class-aware samplers do to label exposure (no data copied)."""
    import json

    from mlbalance.io import read_labels
    from mlbalance.samplers import (
        RepeatFactorIterableDataset,
        RepeatFactorSampler,
        auto_threshold,
        class_aware_exposure,
        repeat_exposure,
    )

    source = ctx.paths.get("train", ctx.paths["data"])
    y = read_labels(source)
    t = round(auto_threshold(y), 5)  # threshold="auto": an epoch 1.5x the rows, as training uses
    rfs = repeat_exposure(y, t)
    cas = class_aware_exposure(y)
    print(rfs.summary(top=3))
    tail = {b["bucket"]: b for b in cas.bucket_table()}
    print(
        f"class-aware sampling ({y.n_rows:,} draws): head/medium/tail share of positives "
        + " / ".join(f"{tail[b]['share_after']:.1%}" for b in ("head", "medium", "tail"))
        + " (plain epoch: "
        + " / ".join(f"{tail[b]['share_before']:.1%}" for b in ("head", "medium", "tail"))
        + ")"
    )
    ranks = [RepeatFactorSampler(y, t, seed=ctx.seed, num_replicas=2, rank=r) for r in (0, 1)]
    print(
        f"RepeatFactorSampler, 2 ranks, epoch 0: {ranks[0].epoch_length():,} indices "
        f"(expected {rfs.expected_epoch_length:,.0f}), {len(ranks[0]):,} per rank"
    )
    shards = ctx.paths.get("resample", source)
    stream = RepeatFactorIterableDataset(shards, t, seed=ctx.seed)
    per_reader = [sum(hi - lo for _, lo, hi in part) for part in stream.assignment(0, 4)]
    print(
        f"streaming over {shards.name}/ ({len(stream.files)} files, {len(stream.units)} row "
        f"groups): epoch 0 emits {int(stream.epoch_counts(0).sum()):,} rows; 2 ranks x 2 "
        f"workers read {', '.join(f'{n:,}' for n in per_reader)} source rows"
    )
    ctx.results["sample"] = {"repeat": rfs.to_dict(), "class_aware": cas.to_dict()}
    out = ctx.path("sample.json")
    out.write_text(json.dumps(ctx.results["sample"], indent=1))
    print(f"-> {out} (the same table: mlbalance analyse {source.name} --repeat-threshold auto)")


#: The linear head of the train and folds stages (hashed 0/1 features: no standardising).
_HEAD_OPTIONS: dict[str, Any] = dict(
    epochs=6,
    batch_size=256,
    head_lr=0.1,
    standardize=False,  # sparse 0/1 features: scaling would blow up rare buckets
    warmup_ratio=0.0,
    eval_batch_size=1024,
)


def _hashed_features(sources: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copies of *sources* with an ``embedding`` column of hashed bag-of-words features."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.feature_extraction.text import HashingVectorizer

    from mlbalance.io import LabelSpec, read_metadata, write_parquet

    features = HashingVectorizer(n_features=1024, alternate_sign=False, norm=None, binary=True)
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, source in sources.items():
        table = pq.read_table(source)
        meta = read_metadata(source) or {}
        x = features.transform(table.column("text").to_pylist()).astype(np.float32).toarray()
        emb = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        paths[name] = folder / Path(source).name
        write_parquet(
            table.append_column("embedding", emb),
            paths[name],
            labels=meta.get("labels", []),
            spec=LabelSpec.from_dict(meta.get("label_spec", {})),
        )
    return paths


def stage_train(ctx: DemoContext) -> None:
    """Train a classifier head twice: as our user does (BCE, 0.5), then with the remedies.

    The remedies are the ``default`` recipe of ``mlbalance train`` as it ships: repeat-factor
    sampling with the threshold derived from the label counts, head bias from the priors, and
    per-label thresholds tuned on val, each kept only where it beats the single global cut out
    of fold (the dev-best recipe of the fine-tuned study in BENCHMARKS.md).

    To stay fast and offline the head reads hashed bag-of-words features (1,024 dims, written
    as an ``embedding`` column) instead of a transformer's: ``mlbalance train`` treats any
    embedding column alike (sentence embeddings, MLSMOTE output). The transformer path is the
    same command with ``--model`` on the text column. The features are sparse 0/1 columns, so
    the head does not standardise them (``--no-standardize``): dividing a rare bucket by its
    small standard deviation would amplify it into noise (measured: test micro F1 0.58 -> 0.49).
    """
    from mlbalance.per_label import plot_per_label
    from mlbalance.train import TrainConfig, train

    paths = _hashed_features(
        {split: ctx.paths[split] for split in ("train", "val", "test")}, ctx.path("train-features")
    )
    common = dict(
        train=str(paths["train"]),
        val=str(paths["val"]),
        test=str(paths["test"]),
        **_HEAD_OPTIONS,
        seed=ctx.seed,
        overwrite=True,
    )
    plain = train(
        TrainConfig(
            out=str(ctx.path("model-bce")),
            recipe="bce",
            prior_bias=False,
            threshold_guard="off",
            **common,
        ),
        log=lambda line: None,
    )
    remedies = train(
        TrainConfig(out=str(ctx.path("model-remedies")), save_scores=True, **common),
        log=lambda line: None,
    )
    rows = [
        ("BCE, threshold 0.5 (the usual setup)", plain.metrics["test_at_0.5"]),
        ("BCE + per-label thresholds (unguarded)", plain.metrics["test"]),
        ("default recipe (repeat-factor), threshold 0.5", remedies.metrics["test_at_0.5"]),
        ("default recipe (+ guarded thresholds)", remedies.metrics["test"]),
    ]
    ctx.results["train"] = {
        name: {k: m[k] for k in ("micro_recall", "macro_recall", "micro_f1", "macro_f1")}
        for name, m in rows
    }
    print(
        f"linear head on hashed bag-of-words features, {common['epochs']} epochs; "
        f"test split ({plain.data['test_rows']:,} rows):"
    )
    print(f"  {'':48} {'micro R':>8} {'macro R':>8} {'micro F1':>8} {'macro F1':>8}")
    for name, m in rows:
        print(
            f"  {name:48} {m['micro_recall']:>8.3f} {m['macro_recall']:>8.3f} "
            f"{m['micro_f1']:>8.3f} {m['macro_f1']:>8.3f}"
        )
    print(
        "  (a 20,000-row demo with hashed features and 6 epochs: it shows the pipeline, not\n"
        "  which remedy wins; BENCHMARKS.md 'Recipe study' measures that on 200,000 rows)"
    )
    groups = remedies.fallback_groups()
    print(
        f"  {len(remedies.fallback)} labels did not keep their own tuned threshold "
        f"(see thresholds.json) -> {ctx.path('model-remedies')}/"
    )
    for reason, labels in groups[:3]:
        print(f"    {len(labels):>4} × {reason}")
    plot_per_label(remedies.metrics["test"], ctx.path("train_per_label.png"))
    print(f"-> {ctx.path('train_per_label.png')} (per-label test F1 against train rows, by bucket)")


def stage_thresholds(ctx: DemoContext) -> None:
    """The decision layer on its own: any model's scores in, per-label thresholds out.

    Takes the val/test scores the train stage saved (``save_scores``), re-tunes them with
    :class:`mlbalance.thresholds.ThresholdTuner` (what ``mlbalance thresholds tune`` runs) and
    checks it gives the trainer's thresholds exactly; then compares ways of choosing thresholds
    out of sample (tuned on val, scored on test).
    """
    import numpy as np

    from mlbalance.io import read_labels
    from mlbalance.thresholds import ThresholdTuner
    from mlbalance.thresholds.compare import compare_modes
    from mlbalance.train.model_folder import read_thresholds

    model = ctx.path("model-remedies")
    names = list(read_labels(ctx.paths["train"]).names)
    val, test = (np.load(model / "scores" / f"{s}.npy") for s in ("val", "test"))
    y_val = read_labels(ctx.paths["val"]).with_names(names)
    y_test = read_labels(ctx.paths["test"]).with_names(names)
    tuner = ThresholdTuner(cv=5, guard="group", random_state=ctx.seed).fit(val, y_val)
    same = np.array_equal(tuner.thresholds_, read_thresholds(model / "thresholds.json", names))
    print(f"ThresholdTuner(cv=5, guard='group') on the saved val scores: {val.shape[0]:,} rows x "
          f"{val.shape[1]} labels; equals the trainer's thresholds.json: {'yes' if same else 'NO'}")  # fmt: skip
    modes = {"0.5": None, "global": {"per_label": False}, "per-label": {},
             "guard": {"cv": 5, "guard": "group"}}  # fmt: skip
    table = compare_modes(val, y_val, test, y_test, modes=modes, random_state=ctx.seed)
    print(f"  tuned on val, scored on test: {'mode':<10} {'micro F1':>8} {'macro F1':>8}")
    for mode, row in table.items():
        print(f"  {'':30}{mode:<10} {row['micro_f1']:>8.3f} {row['macro_f1']:>8.3f}")
    ctx.results["thresholds"] = {"reproduced": bool(same), "modes": table}


def stage_folds(ctx: DemoContext) -> None:
    """k-fold training: 4 iterative-stratified folds, one model each, mean ± std of the metrics.

    The same head and recipe as the train stage, on folds of the whole data set: fold k is the
    test split, fold k+1 the validation split (thresholds and best epoch), the other two train.
    """
    from mlbalance.split.files import fold_files, split_to_folder
    from mlbalance.train import train_folds
    from mlbalance.train.folds import format_folds

    folder = ctx.path("folds")
    split_to_folder(ctx.paths["data"], folder, folds=4, seed=ctx.seed, overwrite=True)
    features = _hashed_features({f.stem: f for f in fold_files(folder)}, ctx.path("folds-features"))
    result = train_folds(
        features["fold-0"].parent,
        ctx.path("model-folds"),
        {**_HEAD_OPTIONS, "seed": ctx.seed},
        overwrite=True,
        log=lambda line: None,
    )
    ctx.results["folds"] = result.summary["test"]
    print(format_folds(result, metrics=("micro_f1", "macro_f1", "macro_recall")))


STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("synth", stage_synth),
    ("analyse", stage_analyse),
    ("split", stage_split),
    ("resample", stage_resample),
    ("sample", stage_sample),
    ("train", stage_train),
    ("thresholds", stage_thresholds),
    ("folds", stage_folds),
]


def run_demo(
    out: str | Path = "demo-output",
    *,
    rows: int = 20_000,
    labels: int = 500,
    seed: int = 0,
    overwrite: bool = False,
    stages: list[str] | None = None,
) -> DemoContext:
    """Run the pipeline stages in order and return the shared context.

    ``stages`` stops the pipeline after the last stage named (the earlier stages run too:
    each reads what the ones before it wrote).
    """
    from mlbalance.errors import ParameterError

    names = [name for name, _ in STAGES]
    unknown = sorted(set(stages or ()) - set(names))
    if unknown:
        raise ParameterError(
            f"stages: unknown demo stage(s) {unknown}; stages: {', '.join(names)}", param="stages"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ParameterError(
            f"demo folder {out} is not empty; pass overwrite=True to reuse it", param="overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, rows=rows, labels=labels, seed=seed)
    # later stages read what earlier ones wrote, so run the pipeline up to the last one asked for
    last = max(names.index(n) for n in stages) if stages else len(names) - 1
    total = time.perf_counter()
    for name, stage in STAGES[: last + 1]:
        _header(name)
        t0 = time.perf_counter()
        stage(ctx)
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]")
    print(f"\ndemo finished in {time.perf_counter() - total:.1f} s; outputs in {out}/")
    return ctx
