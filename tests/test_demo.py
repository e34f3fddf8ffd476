"""``mlbalance demo`` runs every stage, in order, on a small synthetic set."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from mlbalance.demo import STAGES, run_demo


def test_demo_runs_every_stage(tmp_path, capsys):
    ctx = run_demo(tmp_path / "demo", rows=2500, labels=40, seed=1)
    out = capsys.readouterr().out
    for name, _ in STAGES:
        assert f"[{name}: " in out  # each stage ran and reported its time
    assert set(ctx.results) >= {"train", "thresholds", "folds"}
    # the decision layer reproduces the trainer's thresholds from the saved val scores
    assert ctx.results["thresholds"]["reproduced"] is True
    assert "equals the trainer's thresholds.json: yes" in out
    # the per-label plot of the train stage and one model per fold with their mean ± std
    assert (tmp_path / "demo" / "train_per_label.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "demo" / "model-folds").iterdir()) == [
        "fold-0", "fold-1", "fold-2", "fold-3", "folds.json"
    ]  # fmt: skip
    assert ctx.results["folds"]["micro_f1"]["n"] == 4 and "mean ± std" in out
