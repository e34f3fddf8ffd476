"""TrainConfig: one place resolves recipes; every choice is checked at construction."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

pytest.importorskip("torch")

from mlbalance.errors import ParameterError
from mlbalance.train.config import TrainConfig

BASE = {"train": "t.parquet", "val": "v.parquet", "out": "m"}


def _cli_config(argv: list[str]) -> TrainConfig:
    from mlbalance.cli.train import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_a_recipe_resolves_in_the_library_as_on_the_command_line():
    lib = TrainConfig(**BASE, recipe="long-tail")
    assert lib.sampler == "class-aware" and lib.threshold_smoothing == 30.0
    cli = _cli_config(["--train", "t.parquet", "--val", "v.parquet", "--out", "m",
                       "--recipe", "long-tail"])  # fmt: skip
    assert cli.to_dict() == lib.to_dict()
    assert lib.from_recipe() == {"sampler": "class-aware", "threshold_smoothing": 30.0}


def test_explicit_options_win_and_replace_re_resolves_the_rest():
    cfg = TrainConfig(**BASE, recipe="long-tail", sampler="none")
    assert cfg.sampler == "none" and cfg.threshold_smoothing == 30.0
    other = dataclasses.replace(cfg, recipe="single-threshold")
    assert other.loss == "weighted-bce" and other.threshold_smoothing == 0.0
    assert other.sampler == "none"  # given explicitly: kept
    back = dataclasses.replace(TrainConfig(**BASE), recipe="long-tail")
    assert back.sampler == "class-aware"  # the default was not a choice: the recipe fills it
    assert TrainConfig(**cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("recipe", "bogus", "'default', 'bce', 'long-tail', 'single-threshold'"),
        ("threshold_fallback", "nope", "'global', 'shrink', 'rare'"),
        ("loss", "x", "'bce', 'weighted-bce'"),
        ("sampler", "lots", "'none', 'repeat-factor', 'class-aware'"),
        ("metric", "n_rows", "'val_loss', 'micro_precision'"),
    ],
)
def test_unknown_choice_is_refused_at_construction(option, value, allowed):
    with pytest.raises(ParameterError) as info:
        TrainConfig(**BASE, **{option: value})
    assert option in info.value.params
    assert str(info.value).startswith(f"{option} must be one of")
    assert allowed in str(info.value) and repr(value) in str(info.value)


def test_metric_choices_are_scores_not_counts():
    from mlbalance.train.config import METRICS

    assert "val_loss" in METRICS and "macro_map" in METRICS and "macro_recall_tail" in METRICS
    assert not {"n_rows", "n_labels", "n_never_predicted"} & set(METRICS)


def test_a_loss_added_to_the_registry_is_a_choice(monkeypatch):
    from mlbalance.train import losses

    monkeypatch.setitem(losses.LOSS_CLASSES, "my-loss", losses.BCELoss)
    monkeypatch.setattr(losses, "LOSSES", (*losses.LOSSES, "my-loss"))
    assert TrainConfig(**BASE, loss="my-loss").loss == "my-loss"
    argv = ["--train", "t", "--val", "v", "--out", "o", "--loss", "my-loss"]
    assert _cli_config(argv).loss == "my-loss"


def test_rfs_threshold_takes_a_frequency_or_auto():
    assert TrainConfig(**BASE, rfs_threshold="auto").rfs_threshold == "auto"
    argv = ["--train", "t", "--val", "v", "--out", "o", "--rfs-threshold", "auto"]
    assert _cli_config(argv).rfs_threshold == "auto"
    for bad in (0, 1.5, "often"):
        with pytest.raises(ParameterError, match="rfs_threshold must be a label frequency"):
            TrainConfig(**BASE, rfs_threshold=bad)


def test_auto_threshold_reaches_the_sampler(monkeypatch):
    import mlbalance.samplers as samplers
    from mlbalance.labels import LabelMatrix
    from mlbalance.train.build import build_sampler
    from mlbalance.train.runtime import Runtime

    seen = {}

    class Recorder:
        def __init__(self, labels, threshold, **kw):
            seen["threshold"] = threshold
            self.expected_epoch_length = 4.0

        def set_epoch(self, epoch):
            pass

        def __len__(self):
            return 4

    monkeypatch.setattr(samplers, "RepeatFactorSampler", Recorder, raising=False)
    y = LabelMatrix.from_lists([["a"], ["b"], ["a", "b"], []])
    cfg = TrainConfig(**BASE, sampler="repeat-factor", rfs_threshold="auto")
    _, info = build_sampler(cfg, y, Runtime())
    assert seen["threshold"] == "auto" and info["threshold"] == "auto"


def test_messages_name_options_and_the_cli_turns_them_into_flags(capsys):
    from mlbalance.cli import main

    with pytest.raises(ParameterError, match=r"^warmup_ratio must be a number in \[0, 1\)"):
        TrainConfig(**BASE, warmup_ratio=1.5)
    assert main(["train", "--train", "t", "--val", "v", "--out", "o", "--warmup-ratio", "2"]) == 2
    assert "error: --warmup-ratio must be a number in [0, 1)" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="threshold_mode 'recall' needs target_recall"):
        TrainConfig(**BASE, threshold_mode="recall")


def test_config_file_goes_through_the_same_resolution(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text("train: a\nval: b\nout: o\nrecipe: long-tail\nlr: 3e-5\nrfs-threshold: auto\n")
    cfg = TrainConfig.from_file(conf, threshold_smoothing=5.0)
    assert cfg.sampler == "class-aware" and cfg.threshold_smoothing == 5.0
    assert cfg.lr == pytest.approx(3e-5) and cfg.rfs_threshold == "auto"
    conf.write_text(json.dumps({"train": "a", "val": "b", "out": "o", "bogus": 1}))
    with pytest.raises(ParameterError, match="unknown option 'bogus'"):
        TrainConfig.from_file(conf)
