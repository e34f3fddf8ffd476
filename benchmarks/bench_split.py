"""Benchmark: iterative stratification, mlbalance vs iterative-stratification vs scikit-multilearn.

One run compares, on the same synthetic long-tailed label matrices (``synth_label_matrix``:
500 labels, ~2.8 labels a row, rarest labels 5 rows), 5 folds:

* mlbalance ``MultilabelStratifiedKFold`` (first order; second order at the largest size),
* iterative-stratification (``iterstrat``) ``MultilabelStratifiedKFold`` (dense y, as it needs),
* scikit-multilearn ``IterativeStratification(order=1)``,

then mlbalance alone at 1,000,000 rows, first and second order, and the many-labels cases
(``--many``: 20,000 x 10,000 and 200,000 x 100,000 labels, ~3 labels a row, the long tail
of ``synth_label_matrix``) where the rare-label repair pass does most of the work: there each
plan (0.8/0.1/0.1 and 5 folds) is timed with the repair pass off (the algorithm alone, "main
kernel") and on, and optionally (``--reference``) with the pure-Python repair pass the compiled
one replaced (``tests/_spread_reference.py``). Each measurement runs in a
fresh child process that loads the matrix from a cached ``.npz`` (so the figure is the split
alone, numba's on-disk cache load included) and reports wall time, peak resident memory of the
whole process (``ru_maxrss``: interpreter, libraries and the matrix included) and the split's
LD, ED and FZ (:func:`mlbalance.split.split_report`, same code for every library). Peers are
capped: iterative-stratification is skipped above ``--peer-max`` rows and scikit-multilearn
above ``--skml-max`` rows (it took 287 s at 300k in the issue's measurement).

Run::

    .venv/bin/python benchmarks/bench_split.py                       # full table (~5 min)
    .venv/bin/python benchmarks/bench_split.py --sizes 20000,50000 --big 200000   # quick
    .venv/bin/python benchmarks/bench_split.py --sizes "" --big 1000000 --many-only  # repair

Targets (issue 3): 1M x 500, 5 folds, first order <= 5 s and <= 1 GB; >= 50x faster than
iterstrat at 300k with LD and ED no worse; second order at 1M <= 60 s. Many labels: the whole
split within 3x of the main kernel at 100,000 labels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K = 5


def matrix_path(cache: Path, n_rows: int, seed: int, n_labels: int = 500) -> Path:
    """Generate (once) and cache the label matrix as a scipy ``.npz``."""
    import scipy.sparse as sp

    suffix = "" if n_labels == 500 else f"_{n_labels}"
    path = cache / f"split_y_{n_rows}_{seed}{suffix}.npz"
    if not path.exists():
        from mlbalance.synth import synth_label_matrix

        y = synth_label_matrix(n_rows, n_labels, seed=seed)
        tmp = path.with_suffix(".tmp.npz")
        sp.save_npz(tmp, y.matrix, compressed=False)
        os.replace(tmp, path)
    return path


def child_repair(method: str, path: str, seed: int) -> None:
    """Time one plan with the repair pass off, then on (compiled or the old Python one)."""
    import scipy.sparse as sp

    from mlbalance.labels import LabelMatrix
    from mlbalance.split import check_ratios, split_report, stratified_split

    plan_name, how = method.split(":")[1:]
    plan: int | list[float] = 5 if plan_name == "folds5" else [0.8, 0.1, 0.1]
    y = LabelMatrix.from_sparse(sp.load_npz(path).tocsr())
    # load both compiled passes from numba's cache first, so neither timing pays for it
    warm = y.take(np.arange(min(y.n_rows, 200)))
    stratified_split(warm, plan, random_state=seed, spread_rare=False)
    stratified_split(warm, plan, random_state=seed)
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    plain = stratified_split(y, plan, shuffle=True, random_state=seed, spread_rare=False)
    out["kernel_wall"], out["kernel_cpu"] = time.perf_counter() - t0, time.process_time() - c0
    if how == "python":
        sys.path.insert(0, str(ROOT / "tests"))
        from _spread_reference import spread_labels_reference
        from mlbalance.split._iterative import _int_csr

        r = check_ratios(plan)
        mask = np.ones(r.size, dtype=bool) if isinstance(plan, int) else np.arange(r.size) > 0
        ids = plain.ids.copy()
        t0, c0 = time.perf_counter(), time.process_time()
        spread_labels_reference(
            ids, _int_csr(y.matrix), np.ones(y.n_rows, dtype=np.int64), r,
            eval_mask=mask, ensure_eval=False, swap_back=True,
        )  # fmt: skip
        out["repair_wall"], out["repair_cpu"] = time.perf_counter() - t0, time.process_time() - c0
        moves, unmet = -1, -1
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        res = stratified_split(y, plan, shuffle=True, random_state=seed)
        out["full_wall"], out["full_cpu"] = time.perf_counter() - t0, time.process_time() - c0
        ids = res.ids
        moves = int((~res.repairs.of_kind("swap_back")).sum())
        unmet = int(res.repairs.unmet_spread.size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rep = split_report(y, ids, plan)
    print(json.dumps({**out, "peak": peak, "moves": moves, "unmet": unmet, "fz": rep.fz,
                      "flz": rep.flz, "ld": rep.ld}))  # fmt: skip


def child(method: str, path: str, seed: int) -> None:
    """Run one measurement in this (fresh) process and print a JSON line."""
    import scipy.sparse as sp

    from mlbalance.split import split_report

    if method.startswith("repair:"):
        child_repair(method, path, seed)
        return
    y = sp.load_npz(path).tocsr()
    n = y.shape[0]
    ids = np.zeros(n, dtype=np.int64)
    X = np.zeros((n, 1), dtype=np.uint8)
    if method.startswith("mlbalance"):
        from mlbalance.split import MultilabelStratifiedKFold

        order = 2 if method.endswith("o2") else 1
        t0 = time.perf_counter()
        c0 = time.process_time()
        cv = MultilabelStratifiedKFold(K, order=order, shuffle=True, random_state=seed)
        for j, (_, test) in enumerate(cv.split(X, y)):
            ids[test] = j
    elif method == "iterstrat":
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold as Peer

        t0 = time.perf_counter()
        c0 = time.process_time()
        dense = y.toarray()  # iterstrat needs a dense indicator matrix
        for j, (_, test) in enumerate(Peer(K, shuffle=True, random_state=seed).split(X, dense)):
            ids[test] = j
        del dense
    elif method == "skmultilearn":
        from skmultilearn.model_selection import IterativeStratification

        np.random.seed(seed)  # noqa: NPY002  (scikit-multilearn draws ties from the global state)
        t0 = time.perf_counter()
        c0 = time.process_time()
        for j, (_, test) in enumerate(IterativeStratification(n_splits=K, order=1).split(X, y)):
            ids[test] = j
    else:
        raise SystemExit(f"unknown method {method}")
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    rep = split_report(y, ids, K)
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "peak": peak,
                "ld": rep.ld,
                "ed": rep.ed,
                "fz": rep.fz,
                "flz": rep.flz,
            }
        )
    )


def measure(method: str, path: Path, seed: int, timeout: float) -> dict[str, float] | None:
    cmd = [sys.executable, __file__, "--child", method, str(path), "--seed", str(seed)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None
    if res.returncode != 0:
        print(res.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"{method} failed on {path.name}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def fmt_row(rows: int, method: str, r: dict[str, float] | None, note: str = "") -> str:
    if r is None:
        return f"| {rows:,} | {method} | {note or 'skipped'} | | | | | |"
    return (
        f"| {rows:,} | {method} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['peak'] / 2**20:,.0f} | "
        f"{r['ld']:.4g} | {r['ed']:.3g} | {r['fz']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "NPZ"), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--sizes", default="50000,100000,300000", help="comparison sizes (rows), comma-separated"
    )
    ap.add_argument("--big", type=int, default=1_000_000, help="mlbalance-only size")
    ap.add_argument(
        "--peer-max",
        type=int,
        default=300_000,
        help="largest size iterative-stratification runs at",
    )
    ap.add_argument(
        "--skml-max", type=int, default=100_000, help="largest size scikit-multilearn runs at"
    )
    ap.add_argument("--repeat", type=int, default=3, help="mlbalance runs per size (median)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per peer run")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mlbalance-bench"))
    ap.add_argument(
        "--many",
        default="20000x10000,200000x100000",
        help="many-labels cases ROWSxLABELS, comma-separated ('' to skip)",
    )
    ap.add_argument(
        "--many-only", action="store_true", help="run only the many-labels cases (and --big)"
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also time the old pure-Python repair pass on the many-labels cases (--timeout)",
    )
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.seed)
        return

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [] if args.many_only else [int(s) for s in args.sizes.split(",") if s]
    # warm numba's on-disk cache once so no row pays the first compilation
    measure("mlbalance", matrix_path(cache, 2000, args.seed), args.seed, args.timeout)
    measure("mlbalance-o2", matrix_path(cache, 2000, args.seed), args.seed, args.timeout)

    def best(method: str, path: Path) -> dict[str, float] | None:
        runs = [measure(method, path, args.seed + i, args.timeout) for i in range(args.repeat)]
        ok = [r for r in runs if r is not None]
        if not ok:
            return None
        med = sorted(ok, key=lambda r: r.get("wall", r.get("full_wall", 0.0)))[len(ok) // 2]
        return med

    lines = [
        "| rows | method | wall s | CPU s | peak MB | LD | ED | FZ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\n".join(lines), flush=True)
    speedups = []
    for n in sizes:
        path = matrix_path(cache, n, args.seed)
        ours = best("mlbalance", path)
        out = [fmt_row(n, "mlbalance", ours)]
        print(out[-1], flush=True)
        if n <= args.peer_max:
            peer = measure("iterstrat", path, args.seed, args.timeout)
            out.append(fmt_row(n, "iterative-stratification", peer, f"> {args.timeout:.0f} s"))
            print(out[-1], flush=True)
            if peer is not None and ours is not None:
                speedups.append((n, peer["wall"] / ours["wall"]))
        else:
            out.append(
                fmt_row(
                    n, "iterative-stratification", None, f"skipped above {args.peer_max:,} rows"
                )
            )
            print(out[-1], flush=True)
        if n <= args.skml_max:
            sk = measure("skmultilearn", path, args.seed, args.timeout)
            out.append(fmt_row(n, "scikit-multilearn", sk, f"> {args.timeout:.0f} s"))
        else:
            out.append(
                fmt_row(n, "scikit-multilearn", None, f"skipped above {args.skml_max:,} rows")
            )
        print(out[-1], flush=True)
        lines.extend(out)
    if not args.many_only:
        big_rows(args, cache, best, lines)
    many_labels(args, cache, best)
    for n, s in speedups:
        print(f"speed-up over iterative-stratification at {n:,} rows: {s:,.0f}x")


def big_rows(args: argparse.Namespace, cache: Path, best: Any, lines: list[str]) -> None:
    """mlbalance alone at ``--big`` rows x 500 labels, first and second order."""
    path = matrix_path(cache, args.big, args.seed)
    for method in ("mlbalance", "mlbalance-o2"):
        r = (
            best(method, path)
            if method == "mlbalance"
            else measure(method, path, args.seed, args.timeout)
        )
        label = "mlbalance (order 1)" if method == "mlbalance" else "mlbalance (order 2)"
        lines.append(fmt_row(args.big, label, r))
        print(lines[-1], flush=True)


def many_labels(args: argparse.Namespace, cache: Path, best: Any) -> None:
    """The repair pass against the main kernel, with many labels (and at ``--big`` x 500)."""
    cases = [tuple(int(v) for v in c.split("x")) for c in args.many.split(",") if c]
    cases.append((args.big, 500))
    print(
        "\n| rows x labels | plan | kernel wall s | full wall s | kernel CPU s | full CPU s "
        "| full / kernel (CPU) | moves | unmet | peak MB |\n|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    for n, n_labels in cases:
        path = matrix_path(cache, n, args.seed, n_labels)
        for plan in ("811", "folds5"):
            r = best(f"repair:{plan}:compiled", path)
            shown = "0.8/0.1/0.1" if plan == "811" else "5 folds"
            if r is None:
                print(f"| {n:,} x {n_labels:,} | {shown} | > {args.timeout:.0f} s |", flush=True)
                continue
            print(
                f"| {n:,} x {n_labels:,} | {shown} | {r['kernel_wall']:.2f} | "
                f"{r['full_wall']:.2f} | {r['kernel_cpu']:.2f} | {r['full_cpu']:.2f} | "
                f"{r['full_cpu'] / r['kernel_cpu']:.2f} | {r['moves']:,} | {r['unmet']:,} | "
                f"{r['peak'] / 2**20:,.0f} |",
                flush=True,
            )
            if args.reference and n_labels > 500:
                old = measure(f"repair:{plan}:python", path, args.seed, args.timeout)
                note = (
                    f"> {args.timeout:.0f} s (killed)"
                    if old is None
                    else f"{old['repair_wall']:.1f} s wall, {old['repair_cpu']:.1f} s CPU"
                )
                print(f"|  | {shown}, old Python repair pass alone | {note} |", flush=True)


if __name__ == "__main__":
    main()
