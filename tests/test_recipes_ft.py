"""The fine-tuned recipe study runner (benchmarks/recipes_ft.py and its ft_* modules).

The study fine-tunes MiniLM on a GPU; these tests run its whole path on CPU with a tiny BERT
(``mlbalance.train.tiny``) on a few hundred synthetic rows: prepare, run (two runs at once),
resume, report, pack — and check the parts that must hold on the GPU the first time: the
scheduler's budget and kill rules, the small score files, the long-tailed GoEmotions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import ft_data  # noqa: E402
import ft_runner  # noqa: E402
import ft_scores  # noqa: E402
import recipes_ft  # noqa: E402

from mlbalance.labels import LabelMatrix  # noqa: E402


# ------------------------------------------------------------------ long-tailed GoEmotions
def _zipf_labels(n_rows: int = 3000, n_labels: int = 12, seed: int = 0) -> LabelMatrix:
    rng = np.random.default_rng(seed)
    p = 0.4 / np.arange(1, n_labels + 1) ** 0.7
    dense = rng.random((n_rows, n_labels)) < p
    dense[np.arange(n_rows), rng.integers(0, n_labels, n_rows)] = True
    return LabelMatrix.from_dense(dense.astype(np.uint8))


def test_long_tail_targets_follow_a_power_law() -> None:
    counts = np.array([1000, 800, 500, 300, 200, 100])
    t = ft_data.long_tail_targets(counts, tail_rows=10)
    assert t[0] == 1000 and t[-1] == 10
    ranks = np.arange(1, 7)
    alpha = np.log(100) / np.log(6)
    np.testing.assert_allclose(t, np.minimum(np.rint(1000 * ranks**-alpha), counts))


def test_long_tail_rows_reach_the_rare_targets_deterministically() -> None:
    y = _zipf_labels()
    targets = ft_data.long_tail_targets(y.counts(), tail_rows=8)
    keep = ft_data.long_tail_rows(y, targets, seed=0)
    assert np.array_equal(keep, np.unique(keep))
    counts = y.take(keep).counts()
    rarest = int(np.argmin(targets))
    assert counts[rarest] == targets[rarest]  # filled first, nothing rides past it
    assert counts.max() / counts.min() > 20
    np.testing.assert_array_equal(keep, ft_data.long_tail_rows(y, targets, seed=0))
    assert not np.array_equal(keep, ft_data.long_tail_rows(y, targets, seed=1))
    with pytest.raises(SystemExit, match=r"rarest label has 30 rows \(want 5-20\)"):
        ft_data.check_long_tail(np.array([3000, 30]))
    with pytest.raises(SystemExit, match=r"imbalance ratio 100 \(want >= 200\)"):
        ft_data.check_long_tail(np.array([1000, 10]))


def test_long_tailed_goemotions(goemotions_dir: Path, tmp_path: Path) -> None:
    opts = {"goemotions": goemotions_dir, "seed": 0, "lt_tail_rows": 10}
    folder = ft_data.prepare("lt-goemotions", tmp_path, opts, say=lambda line: None)
    info = ft_data.load_info(folder)
    counts = np.asarray(info["train_counts"])
    assert 5 <= counts.min() <= 20 and counts.max() / counts.min() >= 200
    assert info["rows"]["dev"] == 5426 and info["rows"]["test"] == 5427  # untouched
    again = ft_data.prepare("lt-goemotions", tmp_path / "b", opts, say=lambda line: None)
    assert (again / "train.parquet").read_bytes() == (folder / "train.parquet").read_bytes()


# ------------------------------------------------------------------ score files
def _scores(n: int = 600, n_labels: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    prior = np.geomspace(0.3, 0.004, n_labels)
    y = (rng.random((n, n_labels)) < prior).astype(np.uint8)
    logits = np.log(prior / (1 - prior)) + rng.normal(0, 1.5, (n, n_labels)) + 3.0 * y
    return (1 / (1 + np.exp(-logits))).astype(np.float32), sp.csr_matrix(y)


def test_stored_scores_are_exact_above_each_floor(tmp_path: Path) -> None:
    dev, dev_y = _scores(seed=0)
    test, test_y = _scores(seed=1)
    info = ft_scores.write_scores(tmp_path / "s.npz", dev, test, dev_y)
    got_dev, got_test, floors = ft_scores.read_scores(tmp_path / "s.npz")
    assert info["kept_share"] < 0.8 and (floors <= 0.5).all()
    for full, got in ((dev, got_dev), (test, got_test)):
        half = full.astype(np.float16).astype(np.float32)
        above = half >= floors[None, :]
        np.testing.assert_array_equal(got[above], half[above])
        assert (got[~above] == 0).all()
    # the tuned thresholds (guarded: at most 10x positives fire) sit above every floor, so the
    # stored scores give exactly the thresholds and test metrics of the full float16 scores
    dev16 = dev.astype(np.float16).astype(np.float32)
    test16 = test.astype(np.float16).astype(np.float32)
    t_full = ft_scores.tuned(dev16, dev_y, test16, test_y)
    t_got = ft_scores.tuned(got_dev, dev_y, got_test, test_y)
    np.testing.assert_array_equal(t_full, t_got)
    assert ft_scores.inexact_labels(t_got, floors) == 0
    counts = np.asarray(dev_y.sum(axis=0)).ravel()
    assert ft_scores.metrics_at(test_y, got_test, t_got, counts) == ft_scores.metrics_at(
        test_y, test16, t_full, counts
    )
    # a threshold below a label's floor is flagged, not silently wrong
    assert ft_scores.inexact_labels(np.zeros(40), floors) == int((floors > 0).sum()) > 0


def test_a_mode_is_one_function_of_the_four_arrays(tmp_path: Path) -> None:
    dev, dev_y = _scores(seed=2)
    test, test_y = _scores(seed=3)
    ft_scores.write_scores(tmp_path / "s.npz", dev, test, dev_y)
    seen = []

    def global_cut(val_scores, val_labels, test_scores, test_labels):
        seen.append(val_scores.shape[0])
        return 0.3

    modes = {"0.5": ft_scores.MODES["0.5"], "global-0.3": global_cut}
    counts = np.ones(40)
    out = ft_scores.score_run(tmp_path / "s.npz", dev_y, test_y, counts, modes)
    assert set(out) == {"0.5", "global-0.3"}
    assert seen == [600, 300, 300]  # once on all of dev, once per cross-fitting half
    assert out["0.5"]["dev_cv"] == out["0.5"]["dev"]
    assert out["global-0.3"]["test"] == ft_scores.metrics_at(test_y, test, 0.3, counts)
    assert {"tuned", "smoothed", "rare"} <= set(ft_scores.MODES)


# ------------------------------------------------------------------ the scheduler
def _fake_run(tmp_path: Path, name: str, seconds: float, rows: float = 1.0) -> ft_runner.Run:
    run = ft_runner.Run("d", name, 0, tmp_path / "d" / f"{name}-s0", [], [], rows)
    code = f"import time; time.sleep({seconds})"
    run.command = lambda: [sys.executable, "-c", code]  # type: ignore[method-assign]
    return run


def _scheduler(runs, **kw) -> ft_runner.Scheduler:
    def finish(run, stages, total):
        return {"seconds": total, "planned_rows": run.planned_rows, "headline": "ok"}

    opts = {"budget_s": 60.0, "deadline_s": 60.0, "run_timeout_s": 30.0} | kw
    return ft_runner.Scheduler(
        runs, parallel=2, finish=finish, env=ft_runner.python_env(2), say=lambda s: None,
        poll_s=0.05, **opts,
    )  # fmt: skip


def test_scheduler_kills_and_records_resumes_and_keeps_the_budget(tmp_path: Path) -> None:
    quick, slow = _fake_run(tmp_path, "quick", 0.1), _fake_run(tmp_path, "slow", 60)
    summary = _scheduler([quick, slow], run_timeout_s=3.0).run()
    assert summary["finished"] == ["d/quick-s0"] and summary["killed"] == ["d/slow-s0"]
    killed = json.loads((slow.folder / ft_runner.KILLED_JSON).read_text())
    assert killed["status"] == "killed" and "run-timeout" in killed["reason"]
    # resume: the finished run is skipped, the killed one runs again
    again = _scheduler([quick, _fake_run(tmp_path, "slow", 0.1)]).run()
    assert again["done_before"] == ["d/quick-s0"] and again["finished"] == ["d/slow-s0"]
    assert not (slow.folder / ft_runner.KILLED_JSON).exists()
    # budget: finished runs took ~0.2 s per planned row; 1,000 rows do not fit in 5 s
    big = _fake_run(tmp_path, "big", 0.1, rows=1000.0)
    small = _fake_run(tmp_path, "small", 0.1, rows=1.0)
    budget = _scheduler([quick, big, small], budget_s=5.0).run()
    assert budget["not_started_budget"] == ["d/big-s0"] and budget["finished"] == ["d/small-s0"]
    assert not big.folder.exists()
    # a failing job leaves failed.json and is skipped on resume unless asked
    bad = ft_runner.Run("d", "bad", 0, tmp_path / "d" / "bad-s0", [], [], 1.0)
    bad.command = lambda: [sys.executable, "-c", "raise SystemExit(3)"]  # type: ignore[method-assign]
    assert _scheduler([bad]).run()["failed"] == ["d/bad-s0"]
    assert "exited with code 3" in (bad.folder / ft_runner.FAILED_JSON).read_text()
    assert _scheduler([bad]).run()["failed_before"] == ["d/bad-s0"]
    # the deadline kills what runs and records it
    late = _fake_run(tmp_path, "late", 60)
    deadline = _scheduler([late], deadline_s=1.0).run()
    assert deadline["killed"] == ["d/late-s0"]
    assert "deadline" in json.loads((late.folder / ft_runner.KILLED_JSON).read_text())["reason"]


def test_stopping_the_runner_kills_and_records_its_runs(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    late = _fake_run(tmp_path, "late", 60)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        summary = _scheduler([late, _fake_run(tmp_path, "next", 60)], run_timeout_s=30.0).run()
    finally:
        timer.cancel()
    assert sorted(summary["killed"]) == ["d/late-s0", "d/next-s0"]
    rec = json.loads((late.folder / ft_runner.KILLED_JSON).read_text())
    assert "stopped (SIGTERM)" in rec["reason"]
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back


# ------------------------------------------------------------------ end to end, tiny BERT
def _main(*argv: str) -> int:
    return recipes_ft.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mlbalance.train.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("ft")
    data, runs = root / "data", root / "runs"
    synth = ("--synthetic-rows", "300", "--synthetic-labels", "8", "--synthetic-ratios")
    assert _main("prepare", "--data", "synthetic", *synth, "0.6,0.2,0.2", "--data-dir", data) == 0
    import pyarrow.parquet as pq

    texts = pq.read_table(data / "synthetic" / "train.parquet").column("text").to_pylist()
    model = make_tiny_model(root / "tiny", texts, vocab_size=200, hidden_size=16, num_layers=1)
    common = ("--data", "synthetic", "--model", model, "--data-dir", data, "--out", runs)
    args = (*common, "--seeds", "0", "--recipes", "default,la", "--epochs", "1")
    assert _main("run", *args, "--parallel", "2") == 0
    return {"root": root, "data": data, "runs": runs, "args": args}  # type: ignore[dict-item]


def test_run_trains_scores_and_stores_each_run(study) -> None:
    for recipe in ("default", "la"):
        folder = study["runs"] / "synthetic" / f"{recipe}-s0"
        rec = json.loads((folder / "run.json").read_text())
        assert rec["status"] == "done" and rec["planned_rows"] == 180
        names = sorted(p.name for p in folder.iterdir())
        assert names == [
            "label_counts.json", "labels-dev.npz", "labels-test.npz", "metrics.json",
            "run.json", "scores.npz", "thresholds.json", "train.log", "training_args.json",
        ]  # fmt: skip
        text = (folder / "run.json").read_text() + (folder / "training_args.json").read_text()
        assert str(study["root"]) not in text  # no machine-local path
        dev, test, _ = ft_scores.read_scores(folder / "scores.npz")
        assert dev.shape == (60, 8) and test.shape == (60, 8)
    la = json.loads((study["runs"] / "synthetic" / "la-s0" / "run.json").read_text())
    assert la["train_args"][-3:] == ["--loss", "logit-adjusted", "--no-prior-bias"]


def test_crt_candidate_uses_the_trainers_flag() -> None:
    import subprocess
    import sys

    crt = recipes_ft.RECIPES["crt"]
    assert crt.requires == recipes_ft.CRT_FLAG and recipes_ft.CRT_FLAG in crt.args
    help_text = subprocess.run(
        [sys.executable, "-m", "mlbalance", "train", "--help"], capture_output=True, text=True
    ).stdout
    assert recipes_ft.CRT_FLAG in help_text  # the candidate runs (it is not skipped)


def test_second_run_starts_nothing(study, capsys) -> None:
    assert _main("run", *study["args"], "--parallel", "2") == 0
    last = json.loads((study["runs"] / "last_run.json").read_text())
    assert last["finished"] == [] and len(last["done_before"]) == 2
    assert "0 run(s) to do, 2 done before" in capsys.readouterr().out


def test_dry_run_prints_the_plan_and_trains_nothing(study, capsys) -> None:
    args = [a if a != "0" else "0,1" for a in study["args"]]
    assert _main("run", *args, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "synthetic/la-s1" in out and "4 runs (2 to do)" in out
    assert "360 train rows" in out
    assert not (study["runs"] / "synthetic" / "la-s1").exists()


def test_report_and_pack(study, tmp_path: Path) -> None:
    assert _main("report", study["runs"], "--out", tmp_path / "report") == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## synthetic" in md and "| default | 1 |" in md and "| la | 1 |" in md
    assert "dev pick:" in md and "tail recall >= +15 pts" in md
    assert (tmp_path / "report" / "report.png").stat().st_size > 10_000
    assert _main("pack", study["runs"], "--to", tmp_path / "packed", "--part-mb", "0.004") == 0
    parts = sorted((tmp_path / "packed").glob("runs.tgz.*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 4_000 for p in parts)
    whole = tmp_path / "whole.tgz"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(whole) as tar:
        names = tar.getnames()
    assert "runs/synthetic/la-s0/scores.npz" in names
    assert not any("/data/" in n or n.endswith("model.safetensors") for n in names)


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "recipes_ft.py"), "run", "--help"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "--budget-s" in out.stdout and "--dry-run" in out.stdout


def test_half_precision_model_travels_and_trains_from_float32(tmp_path: Path) -> None:
    import ft_pack
    from safetensors.torch import load_file

    from mlbalance.train.tiny import make_tiny_model

    model = Path(make_tiny_model(tmp_path / "tiny", ["a b c", "b c d"] * 20, vocab_size=60))
    ft_pack.pack_model(model, tmp_path / "half")
    half = load_file(tmp_path / "half" / "model.safetensors")
    assert all(v.dtype == torch_dtype("float16") for v in half.values())
    assert ft_pack.fp32_model(str(model), tmp_path / "work", print) == str(model)  # already fp32
    restored = Path(ft_pack.fp32_model(str(tmp_path / "half"), tmp_path / "work", print))
    assert restored == tmp_path / "work" / "_model-fp32"
    weights = load_file(restored / "model.safetensors")
    original = load_file(model / "model.safetensors")
    for name, w in weights.items():
        assert w.dtype == torch_dtype("float32")
        assert (w == original[name].half().float()).all()
    assert (restored / "tokenizer.json").exists() and (restored / "config.json").exists()
    from safetensors import safe_open

    with safe_open(str(restored / "model.safetensors"), "pt") as fh:
        assert fh.metadata()["format"] == "pt"  # transformers refuses the file without it


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def test_every_candidate_is_a_valid_train_command() -> None:
    # what runs on the GPU must parse there: every recipe's flags through the real CLI parser
    # and the trainer's option checks (the cRT slot waits for its flag)
    from mlbalance.cli import build_parser
    from mlbalance.cli.train import config_from_args

    assert sorted(recipes_ft.PRIORITY) == sorted(recipes_ft.RECIPES)
    base = ["train", "--train", "t.parquet", "--val", "v.parquet", "--out", "o", "--model", "m"]
    for recipe in recipes_ft.RECIPES.values():
        if recipe.requires:
            continue
        flags = [a.format(rfs_threshold="0.05") for a in recipe.args]
        args = build_parser().parse_args([*base, *flags])
        given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "json")}
        cfg = config_from_args(given)
        assert cfg.loss in ("bce", "db", "asl", "logit-adjusted"), recipe.key
    la = config_from_args(
        {
            k: v
            for k, v in vars(
                build_parser().parse_args([*base, *recipes_ft.RECIPES["la"].args])
            ).items()
            if k not in ("func", "command", "json")
        }
    )
    assert la.loss == "logit-adjusted" and la.prior_bias is False
