"""Named training recipes (``--recipe``): presets under the user's explicit options."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("torch")

from mlbalance import ParameterError
from mlbalance.train.config import (
    RECIPES,
    add_config_arguments,
    config_from_args,
)

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


def test_long_tail_recipe_sets_the_distribution_balanced_loss():
    cfg = _config([*BASE, "--recipe", "long-tail"])
    assert cfg.loss == "db"


def test_single_threshold_recipe_bounds_the_weights():
    cfg = _config([*BASE, "--recipe", "single-threshold"])
    assert cfg.loss == "weighted-bce"
    assert cfg.loss_params == {"scheme": "sqrt-inverse", "max_weight": 10.0}
    # the preset is copied, never shared
    cfg.loss_params["max_weight"] = 1.0
    assert RECIPES["single-threshold"]["loss_params"]["max_weight"] == 10.0


def test_explicit_options_override_the_recipe(tmp_path):
    assert _config([*BASE, "--recipe", "long-tail", "--loss", "asl"]).loss == "asl"
    conf = tmp_path / "run.yaml"
    conf.write_text("recipe: long-tail\nloss: focal\n")
    assert _config([*BASE, "--config", str(conf)]).loss == "focal"
    conf.write_text("recipe: long-tail\n")
    assert _config([*BASE, "--config", str(conf)]).loss == "db"


def test_unknown_recipe_is_refused(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text("recipe: magic\n")
    with pytest.raises(ParameterError, match="--recipe must be one of default, long-tail"):
        _config([*BASE, "--config", str(conf)])
    with pytest.raises(SystemExit):
        _config([*BASE, "--recipe", "magic"])
