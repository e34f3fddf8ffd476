"""Named training recipes (``--recipe``): presets under the user's explicit options."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("torch")

from mlbalance import ParameterError
from mlbalance.cli.train import add_config_arguments, config_from_args
from mlbalance.train.config import RECIPES

BASE = ["--train", "t.parquet", "--val", "v.parquet", "--out", "m"]


def _config(argv: list[str]):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_default_recipe_is_bce_with_prior_bias():
    cfg = _config(BASE)
    assert cfg.recipe == "default"
    assert cfg.loss == "bce"
    assert cfg.prior_bias is True


def test_long_tail_recipe_sets_class_aware_sampling_and_smoothed_thresholds():
    cfg = _config([*BASE, "--recipe", "long-tail"])
    assert cfg.sampler == "class-aware" and cfg.threshold_smoothing == 30.0
    assert cfg.loss == "bce"


def test_single_threshold_recipe_bounds_the_weights():
    cfg = _config([*BASE, "--recipe", "single-threshold"])
    assert cfg.loss == "weighted-bce"
    assert cfg.loss_params == {"scheme": "sqrt-inverse", "max_weight": 10.0}
    # the preset is copied, never shared
    cfg.loss_params["max_weight"] = 1.0
    assert RECIPES["single-threshold"]["loss_params"]["max_weight"] == 10.0


def test_explicit_options_override_the_recipe(tmp_path):
    cfg = _config([*BASE, "--recipe", "long-tail", "--sampler", "repeat-factor"])
    assert cfg.sampler == "repeat-factor" and cfg.threshold_smoothing == 30.0
    conf = tmp_path / "run.yaml"
    conf.write_text("recipe: long-tail\nthreshold_smoothing: 5\n")
    assert _config([*BASE, "--config", str(conf)]).threshold_smoothing == 5.0
    conf.write_text("recipe: long-tail\n")
    assert _config([*BASE, "--config", str(conf)]).sampler == "class-aware"


def test_unknown_recipe_is_refused(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text("recipe: magic\n")
    with pytest.raises(ParameterError, match="recipe must be one of 'default', 'bce', 'long-tail'"):
        _config([*BASE, "--config", str(conf)])
    with pytest.raises(SystemExit):
        _config([*BASE, "--recipe", "magic"])


def test_threshold_fallback_choices_are_the_tuners():
    from mlbalance.thresholds import FALLBACKS
    from mlbalance.train.config import TrainConfig

    rule = TrainConfig._parameter_constraints["threshold_fallback"]
    assert tuple(rule) == FALLBACKS  # the CLI offers exactly what the tuner takes


def test_default_recipe_is_repeat_factor_with_guarded_thresholds():
    from mlbalance.train.config import TrainConfig

    cfg = TrainConfig(train="t.parquet", val="v.parquet", out="o")
    assert (cfg.recipe, cfg.sampler, cfg.rfs_threshold) == ("default", "repeat-factor", "auto")
    assert (cfg.threshold_cv, cfg.threshold_guard) == (5, "group")
    plain = TrainConfig(train="t.parquet", val="v.parquet", out="o", recipe="bce")
    assert plain.sampler == "none" and plain.threshold_guard == "group"
    # the default guard steps aside where it cannot apply; asked for there, it is an error
    recall = TrainConfig(
        train="t.parquet", val="v.parquet", out="o", threshold_mode="recall", target_recall=0.8
    )
    assert recall.threshold_guard == "off"
    assert TrainConfig(train="t", val="v", out="o", threshold_cv=None).threshold_guard == "off"
    with pytest.raises(ParameterError, match="threshold_guard 'label' compares F1 out of fold"):
        TrainConfig(
            train="t", val="v", out="o", threshold_guard="label", threshold_mode="recall",
            target_recall=0.5,
        )  # fmt: skip
