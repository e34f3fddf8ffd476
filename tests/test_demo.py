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
    assert set(ctx.results) >= {"train", "thresholds"}
    # the decision layer reproduces the trainer's thresholds from the saved val scores
    assert ctx.results["thresholds"]["reproduced"] is True
    assert "equals the trainer's thresholds.json: yes" in out
