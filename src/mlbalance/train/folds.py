"""k-fold training, :func:`train_folds`: one model per fold of a ``split --folds`` folder.

For fold ``k`` of ``K``: test = fold ``k``, val = fold ``(k + 1) mod K`` (early stopping,
the best checkpoint and the per-label thresholds are chosen on val, so the test figure stays
out of sample), train = the other ``K - 2`` folds read as one split. Each fold is an ordinary
:func:`mlbalance.train.train` run with the same options and seed, written to ``OUT/fold-k``;
``OUT/folds.json`` holds each fold's scalar metrics and, per metric, the mean and the sample
standard deviation (``ddof=1``) over the folds.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbalance.errors import InputError, ParameterError
from mlbalance.train.config import TrainConfig, option_fields
from mlbalance.train.model_folder import TrainResult

__all__ = ["FOLDS_JSON", "FoldsResult", "format_folds", "train_folds"]

FOLDS_JSON = "folds.json"
#: The metric blocks of a fold summarised over the folds.
SUMMARISED = ("test", "test_at_0.5")
MIN_FOLDS = 3
Log = Callable[[str], None]


@dataclass
class FoldsResult:
    """What :func:`train_folds` returns: each fold's run and the summary over the folds.

    Attributes
    ----------
    out : Path
        The output folder (``fold-0`` ... and ``folds.json``).
    folds : list of dict
        Per fold: ``fold``, ``test``, ``val``, ``train`` (fold file names), ``out`` (its
        model folder's name), ``best_epoch`` and ``metrics`` (the scalar metrics of ``test``,
        ``test_at_0.5`` and ``val``).
    summary : dict
        ``{block: {metric: {"mean", "std", "n"}}}`` for the blocks ``test`` and
        ``test_at_0.5``; ``std`` is the sample standard deviation (ddof=1) over the ``n``
        folds where the metric is defined (None with fewer than 2).
    results : list of TrainResult
        The runs, in fold order.
    seconds : list of float
        Wall time of each fold.
    """

    out: Path
    folds: list[dict[str, Any]]
    summary: dict[str, dict[str, dict[str, Any]]]
    results: list[TrainResult]
    seconds: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``folds.json``, ``--json``); timings only under ``seconds``."""
        return {
            "out": self.out.name,
            "n_folds": len(self.folds),
            "scheme": "fold k: test = fold k, val = fold k+1 (mod K), train = the other K-2",
            "std": "sample standard deviation over the folds (ddof=1)",
            "summary": self.summary,
            "folds": self.folds,
            "seconds": {"per_fold": [round(s, 2) for s in self.seconds]},
        }


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    for key, value in metrics.items():
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out[key] = value
    return out


def summarise(values: list[float | int | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) of the defined values."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    mean = math.fsum(xs) / len(xs)
    std = None
    if len(xs) > 1:
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return {"mean": mean, "std": std, "n": len(xs)}


def _check_vocabularies(files: list[Path]) -> None:
    """Refuse folds whose stored label vocabularies differ (they must share label ids)."""
    from mlbalance.io import read_metadata

    first: list[str] | None = None
    for f in files:
        names = (read_metadata(f) or {}).get("labels")
        if names is None:
            continue
        if first is None:
            first, first_file = list(names), f
        elif list(names) != first:
            only = sorted(set(names) ^ set(first))
            detail = f"labels only in one: {', '.join(only[:5])}" if only else "another order"
            raise InputError(
                f"{f}: label vocabulary differs from {first_file.name}'s ({len(names)} vs "
                f"{len(first)} labels; {detail}); the folds of one split share one vocabulary"
            )


def _fold_files(folds: str | Path) -> list[Path]:
    from mlbalance.split.files import fold_files

    files = fold_files(folds)
    if not files:
        # no param=: the message is about the folder (whose name may be "folds" itself)
        raise InputError(
            f"{folds} holds no fold files (fold-0.parquet, ...): give the output folder of "
            "`mlbalance split` with K folds"
        )
    if len(files) < MIN_FOLDS:
        raise InputError(
            f"{folds} holds {len(files)} fold(s); k-fold training needs at least {MIN_FOLDS} "
            "(a test, a val and a train fold)"
        )
    _check_vocabularies(files)
    return files


def _base_options(options: TrainConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, TrainConfig):  # the options it was given, data paths aside
        given = {f.name: getattr(options, f.name) for f in option_fields()}
        drop = {*options._resolved, "train", "val", "test", "out"}
        return {k: v for k, v in given.items() if k not in drop}
    given = dict(options)
    clash = [k for k in ("train", "val", "test", "out") if given.get(k) is not None]
    if clash:
        raise ParameterError(
            f"folds cannot be combined with {', '.join(clash)} (each fold is test, val and "
            "train in turn; the output is the out argument)",
            param=("folds", *clash),
        )
    return given


def train_folds(
    folds: str | Path,
    out: str | Path,
    options: TrainConfig | Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    log: Log | None = None,
    progress: bool | None = None,
) -> FoldsResult:
    """Train one model per fold of a ``split --folds`` folder; mean ± std of the test metrics.

    Parameters
    ----------
    folds : str or Path
        The output folder of ``mlbalance split --folds K`` (K >= 3).
    out : str or Path
        Output folder: ``fold-0`` ... ``fold-{K-1}`` (model folders) and ``folds.json``.
    options : TrainConfig or mapping, optional
        Training options (the keywords of :class:`TrainConfig`, without ``train``, ``val``,
        ``test`` and ``out``; a TrainConfig's data paths are replaced). Every fold uses them,
        seed included, so the run is deterministic for a seed.
    overwrite : bool, default False
        Replace a non-empty output folder. The whole output is built in a temporary folder
        beside it and swapped in at the end (locked meanwhile): a failed or killed run leaves
        the old output as it was, and an overwrite leaves no fold folder of an earlier run.
    log : callable, optional
        Receives the progress lines (``fold k/K ...``) and each run's lines. Default: stderr.
    progress : bool, optional
        Progress bars on or off (default: on when stderr is a terminal).

    Returns
    -------
    FoldsResult
    """
    from mlbalance.io import output_dir, write_json
    from mlbalance.train.runtime import process_rank, running

    say = log or (lambda line: print(line, file=sys.stderr))
    base = _base_options(options)
    files = _fold_files(folds)
    out = Path(out)
    overwrite = overwrite or bool(base.get("overwrite"))
    plan = [_fold_plan(k, files) for k in range(len(files))]
    for k, (test, val, train_files) in enumerate(plan):  # every option checked before any write
        _fold_config(base, k, test, val, train_files, out)
    # under torchrun one process group serves every fold (joining and leaving it per run
    # races: a new group can read the last one's addresses from the store)
    with running(str(base.get("device") or "auto")):
        if process_rank() != 0:  # rank 0 owns the output and the log; the others train along
            return _run_folds(plan, base, out, out, lambda line: None, log, progress)
        with output_dir(out, overwrite=overwrite, inputs=[folds]) as tmp:
            result = _run_folds(plan, base, out, tmp, say, log, progress)
            write_json(result.to_dict(), tmp / FOLDS_JSON)
    for k, run in enumerate(result.results):  # the folders now live in out, not in tmp
        run.out = out / f"fold-{k}"
    return result


def _fold_plan(k: int, files: list[Path]) -> tuple[Path, Path, list[Path]]:
    """Fold *k*'s test, val and train files."""
    test, val = files[k], files[(k + 1) % len(files)]
    return test, val, [f for f in files if f not in (test, val)]


def _fold_config(
    base: dict[str, Any], k: int, test: Path, val: Path, train_files: list[Path], out: Path
) -> TrainConfig:
    """The :class:`TrainConfig` of fold *k*, its model folder ``out/fold-k``."""
    ckpt = base.get("checkpoint_dir")  # one checkpoint folder per fold inside it
    name = f"fold-{k}"
    return TrainConfig(
        **{
            **base,
            "train": [str(f) for f in train_files],
            "val": str(val),
            "test": str(test),
            "out": str(out / name),
            "overwrite": False,  # a fresh folder inside the output being built
            **({"checkpoint_dir": str(Path(ckpt) / name)} if ckpt else {}),
        }
    )


def _run_folds(
    plan: list[tuple[Path, Path, list[Path]]],
    base: dict[str, Any],
    out: Path,
    into: Path,
    say: Log,
    log: Log | None,
    progress: bool | None,
) -> FoldsResult:
    """Train every fold into *into* (the output being built); the result names *out*."""
    from mlbalance.train.trainer import train

    records: list[dict[str, Any]] = []
    results: list[TrainResult] = []
    seconds: list[float] = []
    for k, (test, val, train_files) in enumerate(plan):
        name = f"fold-{k}"
        say(
            f"fold {k + 1}/{len(plan)}: test {test.name}, val {val.name}, train "
            + ", ".join(f.name for f in train_files)
        )
        started = time.perf_counter()
        result = train(
            _fold_config(base, k, test, val, train_files, into), log=log, progress=progress
        )
        seconds.append(time.perf_counter() - started)
        results.append(result)
        m = result.metrics
        records.append(
            {
                "fold": name,
                "test": test.name,
                "val": val.name,
                "train": [f.name for f in train_files],
                "out": name,
                "best_epoch": result.best_epoch,
                "metrics": {b: _scalars(m[b]) for b in (*SUMMARISED, "val") if b in m},
            }
        )
    summary = {
        block: {
            key: summarise([r["metrics"][block].get(key) for r in records])
            for key in records[0]["metrics"][block]
        }
        for block in SUMMARISED
    }
    return FoldsResult(out, records, summary, results, seconds)


def format_folds(result: FoldsResult, *, metrics: tuple[str, ...] | None = None) -> str:
    """The one-screen summary: each test metric's mean ± std (ddof=1) and per-fold values."""
    from mlbalance.metrics import SCORES

    keys = metrics or SCORES
    n = len(result.folds)
    lines = [
        f"mlbalance train: {n} folds (test = fold k, val = fold k+1, train = the other "
        f"{n - 2}); {sum(result.seconds):.1f} s",
        f"  {'test metric (tuned thresholds)':32} {'mean ± std':>17}   per fold",
    ]
    for key in keys:
        s = result.summary["test"].get(key)
        if s is None:
            continue
        values = [r["metrics"]["test"].get(key) for r in result.folds]
        shown = " ".join("  -   " if v is None else f"{v:.4f}" for v in values)
        if s["mean"] is None:
            mean = "-"
        else:
            std = "-" if s["std"] is None else f"{s['std']:.4f}"
            mean = f"{s['mean']:.4f} ± {std}"
        lines.append(f"  {key:32} {mean:>17}   {shown}")
    at_half = result.summary["test_at_0.5"]
    for key in ("micro_f1", "macro_f1"):
        s = at_half.get(key)
        if s and s["mean"] is not None:
            std = "-" if s["std"] is None else f"{s['std']:.4f}"
            shown = f"{s['mean']:.4f} ± {std}"
            lines.append(f"  {key + ' at 0.5':32} {shown:>17}")
    lines.append("  std: sample standard deviation over the folds (ddof=1)")
    lines.append(f"  {', '.join(r['out'] for r in result.folds)}, {FOLDS_JSON} -> {result.out}")
    return "\n".join(lines)
