"""The fine-tuned recipe study: which imbalance remedy wins when the encoder is fine-tuned.

The frozen-encoder study (``recipes.py``) chose ``--recipe default`` and ``--recipe
long-tail``; this one fine-tunes a transformer (all-MiniLM-L6-v2 on a GPU) with
``python -m mlbalance train`` for every candidate on three data sets, 3 seeds each, and ranks
the candidates by the same rule: decide on dev (out of sample), report test, mean +- std over
seeds. The GPU only trains; every threshold mode is computed afterwards on a CPU from the dev
and test scores that each run keeps (``ft_scores.py``).

Commands::

    # build the data sets once (CPU), then carry them to the GPU machine
    python benchmarks/recipes_ft.py prepare --data goemotions,lt-goemotions,synthetic \\
        --goemotions ../shared/datasets/goemotions --data-dir ft-data
    # see what would run, and how many rows it trains on
    python benchmarks/recipes_ft.py run --data goemotions,lt-goemotions,synthetic \\
        --seeds 0,1,2 --model all-MiniLM-L6-v2 --data-dir ft-data --out ft-runs --dry-run
    # train (GPU), at most 10 at once, no run started that cannot end within 360 s
    python benchmarks/recipes_ft.py run --data goemotions,lt-goemotions,synthetic \\
        --seeds 0,1,2 --model PATH --parallel 10 --budget-s 360 --data-dir ft-data --out ft-runs
    python benchmarks/recipes_ft.py pack ft-runs --to OUTDIR      # <= 15 MB parts to bring back
    python benchmarks/recipes_ft.py report ft-runs [more run folders] --out ft-report

Candidates (:data:`RECIPES`), each as its paper defines it, all with the trainer's defaults
otherwise (AdamW, lr 3e-5 / head 1e-3, batch 32, bf16 autocast on CUDA): ``bce`` (no prior
bias), ``default`` (BCE + prior bias: ``--recipe default``), ``long-tail`` (class-aware
sampling, Shen et al. 2016: ``--recipe long-tail``), ``rfs`` (repeat-factor sampling, Gupta et
al. 2019, threshold derived from the train label frequencies: ``threshold="auto"``), ``db`` and
``db-cas`` (distribution-balanced loss, Wu et al. 2020, without and with the class-aware
sampler it was designed for), ``asl`` and ``asl-cas`` (Ridnik et al. 2021), ``la`` (logit
adjustment, Menon et al. 2021, no prior bias: the loss adds it), and ``crt`` (decoupled
classifier re-training, Kang et al. 2020: a slot, run only when ``mlbalance train --help``
lists :data:`CRT_FLAG`). Runs start seed-major (seed 0 of every recipe and data set first).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# this checkout's mlbalance (as the child processes get it, see ft_runner.python_env) and the
# ft_* modules beside this file, whether or not PYTHONPATH names them
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).parent)]
import ft_data  # noqa: E402
import ft_pack  # noqa: E402
import ft_runner  # noqa: E402
import ft_scores  # noqa: E402

#: The flag of decoupled classifier re-training in ``mlbalance train`` (Kang et al. 2020,
#: cRT); a candidate whose flag a trainer lacks is skipped with a message. Ten epochs of the
#: output layer on cached features, as Kang et al. re-train theirs.
CRT_FLAG = "--crt-epochs"
CRT_ARGS = (CRT_FLAG, "10")


@dataclass(frozen=True)
class Recipe:
    """One candidate: the ``mlbalance train`` flags that make it, and its source."""

    key: str
    title: str
    args: tuple[str, ...]
    source: str
    requires: str | None = None  # a train flag that must exist

    def sampler(self) -> str:
        return self.args[self.args.index("--sampler") + 1] if "--sampler" in self.args else ""


RECIPES: dict[str, Recipe] = {
    r.key: r
    for r in (
        Recipe("bce", "BCE, no prior bias", ("--no-prior-bias",), "baseline"),
        Recipe("default", "BCE + prior bias (--recipe default)", ("--recipe", "default"), "ours"),
        Recipe(
            "long-tail",
            "class-aware sampling (--recipe long-tail)",
            ("--recipe", "long-tail"),
            "Shen et al. 2016",
        ),
        Recipe(
            "rfs",
            "repeat-factor sampling, threshold auto (epoch x1.5)",
            ("--sampler", "repeat-factor", "--rfs-threshold", "{rfs_threshold}"),
            "Gupta et al. 2019",
        ),
        Recipe("db", "distribution-balanced loss", ("--loss", "db"), "Wu et al. 2020"),
        Recipe(
            "db-cas",
            "DB loss + class-aware sampling",
            ("--loss", "db", "--sampler", "class-aware"),
            "Wu et al. 2020",
        ),
        Recipe("asl", "asymmetric loss", ("--loss", "asl"), "Ridnik et al. 2021"),
        Recipe(
            "asl-cas",
            "ASL + class-aware sampling",
            ("--loss", "asl", "--sampler", "class-aware"),
            "Ridnik et al. 2021",
        ),
        Recipe(
            "la",
            "logit-adjusted BCE (tau 1), no prior bias",
            ("--loss", "logit-adjusted", "--no-prior-bias"),
            "Menon et al. 2021",
        ),
        Recipe(
            "crt",
            "decoupled classifier re-training (cRT)",
            CRT_ARGS,
            "Kang et al. 2020",
            requires=CRT_FLAG,
        ),
    )
}

#: The order runs start in within a seed (the remedies most likely to be shipped first), when
#: ``--recipes`` is not given.
PRIORITY = ("default", "long-tail", "rfs", "la", "db-cas", "asl-cas", "bce", "db", "asl", "crt")

EPOCHS = {"goemotions": 3, "lt-goemotions": 5, "synthetic": 5}


# ------------------------------------------------------------------------------ helpers
def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def train_flags() -> set[str]:
    """The flags that ``mlbalance train --help`` lists (what this trainer supports)."""
    out = subprocess.run(
        [*ft_runner.mlbalance_cmd(), "train", "--help"],
        capture_output=True,
        text=True,
        env=ft_runner.python_env(1),
        check=True,
    ).stdout
    return {w.strip("[],") for w in out.split() if w.startswith("--") or w.startswith("[--")}


def epochs_for(spec: str) -> dict[str, int]:
    """``3`` (every data set) or ``goemotions=3,synthetic=5`` over :data:`EPOCHS`."""
    if spec.isdigit():
        return dict.fromkeys(EPOCHS, int(spec))
    out = dict(EPOCHS)
    for item in _csv(spec):
        name, _, value = item.partition("=")
        if name not in EPOCHS or not value.isdigit():
            raise SystemExit(f"--epochs: bad item {item!r} (want N or NAME=N,...)")
        out[name] = int(value)
    return out


# ------------------------------------------------------------------------------ the plan
def _growth(recipe: Recipe, folder: Path, cache: dict) -> tuple[float, dict[str, str]]:
    """Expected epoch growth of the recipe's sampler and the values its flags need."""
    if "{rfs_threshold}" not in recipe.args:
        return 1.0, {}
    if folder not in cache:
        from mlbalance.io import read_labels
        from mlbalance.samplers import auto_threshold, expected_epoch_growth

        y = read_labels(folder / "train.parquet")
        t = auto_threshold(y)
        cache[folder] = (expected_epoch_growth(y, t), {"rfs_threshold": f"{t:.6g}"})
    return cache[folder]


def build_plan(args: argparse.Namespace, flags: set[str] | None, say: Any) -> list:
    """Every (data set, recipe, seed) run, seed-major, with its commands and planned rows."""
    epochs = epochs_for(args.epochs)
    extra = shlex.split(args.train_args or "")
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    recipes = [RECIPES[k] for k in _csv(args.recipes)]
    if flags is not None:
        for r in recipes:
            if r.requires and r.requires not in flags:
                say(f"{r.key}: skipped, `mlbalance train --help` has no {r.requires} ({r.title})")
        recipes = [r for r in recipes if not r.requires or r.requires in flags]
    cache: dict = {}
    runs = []
    for seed in (int(s) for s in _csv(args.seeds)):
        for recipe in recipes:
            for name in _csv(args.data):
                data = args.data_dir / name
                info = ft_data.load_info(data)
                growth, values = _growth(recipe, data, cache)
                folder = args.out / name / f"{recipe.key}-s{seed}"
                train = [
                    "train",
                    *("--train", str(data / "train.parquet"), "--val", str(data / "dev.parquet")),
                    *("--test", str(data / "test.parquet"), "--model", args.model),
                    *("--out", str(folder / "model"), "--overwrite"),
                    *("--epochs", str(epochs[name]), "--seed", str(seed), "--metric", args.metric),
                    *("--log-every", "1000000000"),
                    *(a.format(**values) for a in recipe.args),
                    *extra,
                ]
                predict = [
                    "predict",
                    *("--model", str(folder / "model"), "--data", str(data / "eval.parquet")),
                    *("--out", str(folder / "eval-scores.parquet"), "--overwrite"),
                    *("--batch-size", "256"),
                ]
                rows = info["rows"]["train"] * epochs[name] * growth
                config = {"epochs": epochs[name], "sampler_growth": round(growth, 4), **values}
                runs.append(
                    ft_runner.Run(name, recipe.key, seed, folder, train, predict, rows, config)
                )
    return runs


def print_plan(runs: list, args: argparse.Namespace, say: Any) -> None:
    """The plan: every run with its planned rows, and the totals per data set."""
    say(f"{'run':<28} {'status':<8} {'epochs':>6} {'growth':>6} {'train rows':>12}")
    for r in runs:
        say(
            f"{r.dataset + '/' + r.recipe + '-s' + str(r.seed):<28} {r.status():<8} "
            f"{r.config['epochs']:>6} {r.config['sampler_growth']:>6.2f} {r.planned_rows:>12,.0f}"
        )
    todo = [r for r in runs if r.status() != "done"]
    say(f"\n{len(runs)} runs ({len(todo)} to do); training rows (all epochs, sampler growth):")
    for name in _csv(args.data):
        mine = [r for r in todo if r.dataset == name]
        info = ft_data.load_info(args.data_dir / name)
        evals = (info["rows"]["dev"] + info["rows"]["test"]) * len(mine)
        say(
            f"  {name:<14} {len(mine):>3} runs  {sum(r.planned_rows for r in mine):>12,.0f} train "
            f"rows  (+ {evals:,} rows scored at the end, dev each epoch)"
        )
    total = sum(r.planned_rows for r in todo)
    say(f"  {'all':<14} {len(todo):>3} runs  {total:>12,.0f} train rows")


# ------------------------------------------------------------------------------ one run's end
def _metric_excerpt(m: dict[str, Any]) -> dict[str, Any]:
    keep = ("micro_f1", "macro_f1", "macro_recall", "macro_map", "macro_recall_tail")
    parts = ("val", "val_at_0.5", "test", "test_at_0.5")
    return {p: {k: m["metrics"][p].get(k) for k in keep} for p in parts if p in m["metrics"]}


def _placeholders(text: str, run: Any, data_dir: Path) -> str:
    """*text* with this machine's paths replaced by ``DATA``, ``RUN`` and ``MODEL``."""
    model = Path(run.train_cmd[run.train_cmd.index("--model") + 1])
    pairs = [(run.folder, "RUN"), (data_dir, "DATA")] + (
        [(model, "MODEL")] if model.exists() else []
    )
    forms = [(form, name) for path, name in pairs for form in {str(path), str(path.resolve())}]
    for form, name in sorted(forms, key=lambda f: -len(f[0])):
        text = text.replace(form, name)
    return text


def finish_run(run: Any, seconds: dict[str, float], total: float, keep_models: bool, data_dir):
    """Store one run's scores and JSON files; remove the model; return the run record."""
    import pyarrow.parquet as pq

    folder, model = run.folder, run.folder / "model"
    info = ft_data.load_info(data_dir / run.dataset)
    names = json.loads((model / "thresholds.json").read_text(encoding="utf-8"))["labels"]
    if sorted(names) != sorted(info["labels"]):
        raise ValueError(f"model labels differ from {run.dataset}'s dataset.json")
    column = pq.read_table(folder / "eval-scores.parquet", columns=["scores"]).column("scores")
    flat = np.asarray(column.combine_chunks().flatten(), dtype=np.float32)
    scores = flat.reshape(-1, len(names))[:, [names.index(n) for n in info["labels"]]]
    n_dev, n_test = info["rows"]["dev"], info["rows"]["test"]
    if scores.shape[0] != n_dev + n_test:
        raise ValueError(f"{scores.shape[0]} scored rows, expected {n_dev + n_test}")
    dev_y = ft_data.load_labels(data_dir / run.dataset, "dev")
    stored = ft_scores.write_scores(
        folder / ft_scores.SCORES, scores[:n_dev], scores[n_dev:], dev_y
    )
    for split in ("dev", "test"):
        shutil.copy2(data_dir / run.dataset / f"labels-{split}.npz", folder / f"labels-{split}.npz")
    for name in ft_runner.KEEP_FILES:
        if (model / name).exists():
            text = (model / name).read_text(encoding="utf-8")
            (folder / name).write_text(_placeholders(text, run, data_dir), encoding="utf-8")
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    if not keep_models:
        shutil.rmtree(model)
    (folder / "eval-scores.parquet").unlink()
    (folder / ft_runner.STAGES).unlink(missing_ok=True)
    excerpt = _metric_excerpt(metrics)
    t = excerpt.get("test", {})
    t5 = excerpt.get("test_at_0.5", {})
    headline = (
        f"test macro F1 {t5.get('macro_f1', 0):.3f} @0.5 / {t.get('macro_f1', 0):.3f} tuned, "
        f"micro {t5.get('micro_f1', 0):.3f} / {t.get('micro_f1', 0):.3f}"
    )
    return {
        "dataset": run.dataset,
        "recipe": run.recipe,
        "seed": run.seed,
        "status": "done",
        "config": run.config,
        "train_args": [_placeholders(a, run, data_dir) for a in run.train_cmd],
        "seconds": total,
        "seconds_by_stage": seconds,
        "planned_rows": run.planned_rows,
        "rows_per_s": round(run.planned_rows / max(float(seconds.get("train", total)), 1e-9), 1),
        "trainer_seconds": metrics.get("seconds"),
        "best_epoch": metrics.get("best_epoch"),
        "history": [
            {k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "macro_f1", "macro_map")}
            for h in metrics.get("history", [])
        ],
        "metrics": excerpt,
        "threshold_fallback": len(metrics.get("threshold_fallback") or []),
        "labels": info["labels"],
        "train_counts": info["train_counts"],
        "scores": stored,
        "label_files": {"dev": "labels-dev.npz", "test": "labels-test.npz"},
        "headline": headline,
    }


# ------------------------------------------------------------------------------ commands
def cmd_prepare(args: argparse.Namespace) -> int:
    opts = {
        "goemotions": args.goemotions,
        "seed": args.data_seed,
        "lt_tail_rows": args.lt_tail_rows,
        "synthetic_rows": args.synthetic_rows,
        "synthetic_labels": args.synthetic_labels,
        "synthetic_ratios": args.synthetic_ratios,
    }
    for name in _csv(args.data):
        if name not in ft_data.DATASETS:
            raise SystemExit(
                f"unknown data set {name!r}; choose from {', '.join(ft_data.DATASETS)}"
            )
        missing = not (args.data_dir / name / ft_data.INFO).exists()
        if missing and name != "synthetic" and not args.goemotions:
            raise SystemExit(f"{name} needs --goemotions DIR (train/dev/test.tsv, labels.txt)")
        ft_data.prepare(name, args.data_dir, opts, say=print)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        print(line, flush=True)

    args.data_dir = args.data_dir or args.out / "data"
    unknown = [k for k in _csv(args.recipes) if k not in RECIPES]
    if unknown:
        raise SystemExit(
            f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}"
        )
    cmd_prepare(args)
    args.out.mkdir(parents=True, exist_ok=True)
    flags = train_flags()
    if not args.dry_run:
        args.model = ft_pack.fp32_model(args.model, args.out, say)
    runs = build_plan(args, flags, say)
    print_plan(runs, args, say)
    if args.dry_run:
        return 0
    scheduler = ft_runner.Scheduler(
        runs,
        parallel=args.parallel,
        budget_s=args.budget_s,
        deadline_s=args.deadline_s or 1.25 * args.budget_s,
        run_timeout_s=args.run_timeout_s,
        finish=lambda run, sec, total: finish_run(run, sec, total, args.keep_models, args.data_dir),
        env=ft_runner.python_env(args.parallel),
        say=say,
        retry_failed=args.retry_failed,
    )
    summary = scheduler.run()
    summary_doc = {"elapsed_s": round(scheduler.elapsed(), 1), **summary}
    ft_runner._write_json(summary_doc, args.out / "last_run.json")
    say(
        f"finished {len(summary['finished'])}, failed {len(summary['failed'])}, killed "
        f"{len(summary['killed'])}, not started for the budget {len(summary['not_started_budget'])}"
        f", done before {len(summary['done_before'])} in {scheduler.elapsed():.0f} s"
    )
    return 1 if summary["failed"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    import ft_report

    ft_report.main(args.runs, args.out)
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    ft_pack.pack(args.runs, args.to, args.part_mb)
    return 0


def cmd_pack_model(args: argparse.Namespace) -> int:
    ft_pack.pack_model(args.src, args.dst)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)

    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default=",".join(ft_data.DATASETS), help="data sets, comma list")
        p.add_argument("--goemotions", type=Path, help="folder with GoEmotions train/dev/test.tsv")
        p.add_argument("--data-seed", type=int, default=0, help="seed of lt-goemotions/synthetic")
        p.add_argument("--lt-tail-rows", type=int, default=10, help="rows of the rarest label")
        p.add_argument("--synthetic-rows", type=int, default=25_000)
        p.add_argument("--synthetic-labels", type=int, default=500)
        p.add_argument("--synthetic-ratios", default="0.9,0.05,0.05", help="train,dev,test")

    p = sub.add_parser("prepare", help="build the data sets (CPU)")
    data_flags(p)
    p.add_argument("--data-dir", type=Path, required=True, help="where the data sets go")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("run", help="train every planned run (GPU), resumable")
    data_flags(p)
    p.add_argument("--data-dir", type=Path, help="prepared data sets (default OUT/data)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--recipes", default=",".join(PRIORITY), help=f"in start order, of {', '.join(RECIPES)}"
    )
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or folder")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--parallel", type=int, default=1, help="runs at once")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no run after")
    p.add_argument("--deadline-s", type=float, help="kill (and record) runs after (1.25 x budget)")
    p.add_argument("--run-timeout-s", type=float, default=480.0, help="kill a run after")
    p.add_argument("--epochs", default="goemotions=3,lt-goemotions=5,synthetic=5")
    p.add_argument("--batch-size", type=int, help="--batch-size of every run (trainer: 32)")
    p.add_argument("--metric", default="macro_map", help="best-epoch metric (threshold-free)")
    p.add_argument("--train-args", help="more `mlbalance train` flags for every run, quoted")
    p.add_argument("--keep-models", action="store_true", help="keep each run's model folder")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="threshold modes offline, tables and a plot (CPU)")
    p.add_argument("runs", type=Path, nargs="+", help="run folders (merged)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("pack", help="tar.gz a run folder in parts (no data, no models)")
    p.add_argument("runs", type=Path)
    p.add_argument("--to", type=Path, required=True)
    p.add_argument("--part-mb", type=float, default=15.0)
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("pack-model", help="float16 copy of a model folder (to carry)")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.set_defaults(func=cmd_pack_model)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
