"""Tests generated over the declared parameter constraints of every options object.

Each class in ``DECLARED`` declares ``_parameter_constraints``; for every parameter, every value
its constraint produces as invalid must be refused with a ParameterError that names the
parameter, and a valid value must be accepted. Add a class here when it declares constraints.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from mlbalance._params import BOOL, RANDOM_STATE, Interval, Options, validate_params
from mlbalance.errors import ParameterError
from mlbalance.resample import MLROS, MLRUS, MLSMOTE, REMEDIAL, TargetCounts
from mlbalance.split import (
    MultilabelStratifiedKFold,
    MultilabelStratifiedShuffleSplit,
    RepeatedMultilabelStratifiedKFold,
    iterative_stratification,
    multilabel_train_test_split,
)
from mlbalance.split._iterative import STRATIFY_CONSTRAINTS
from mlbalance.split._sklearn import TRAIN_TEST_CONSTRAINTS
from mlbalance.thresholds import ThresholdTuner

try:
    from mlbalance.samplers import ClassAwareSampler, RepeatFactorSampler
except ImportError:  # pragma: no cover - torch missing
    ClassAwareSampler = RepeatFactorSampler = None


def _build_resampler(cls, **params):
    obj = cls(**params)
    obj._validate_params()
    return obj


def _build_train_config(cls, **params):
    return cls(**({"train": "t.parquet", "val": "v.parquet", "out": "out"} | params))


def _train_config_class():
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # pragma: no cover - core install
        return []  # its loss choices are the trainer's losses, which need torch
    from mlbalance.train.config import TrainConfig

    return [(TrainConfig, _build_train_config)]


_Y = np.eye(4, dtype=np.uint8)[[0, 1, 2, 3, 0, 1, 2, 3]]

#: Functions with declared options, as (name, constraints) objects for the generated tests.
STRATIFY = SimpleNamespace(
    __name__="iterative_stratification", _parameter_constraints=STRATIFY_CONSTRAINTS
)
TRAIN_TEST = SimpleNamespace(
    __name__="multilabel_train_test_split", _parameter_constraints=TRAIN_TEST_CONSTRAINTS
)

#: (class, how to build and validate it with given params)
DECLARED = [
    *_train_config_class(),
    (MLROS, _build_resampler),
    (MLRUS, _build_resampler),
    (MLSMOTE, _build_resampler),
    (REMEDIAL, _build_resampler),
    (TargetCounts, lambda cls, **p: _build_resampler(cls, **({"min_rows": 1} | p))),
    (ThresholdTuner, lambda cls, **p: cls(**p)),  # validates at construction
    (MultilabelStratifiedKFold, _build_resampler),
    (RepeatedMultilabelStratifiedKFold, _build_resampler),
    (MultilabelStratifiedShuffleSplit, _build_resampler),
    (STRATIFY, lambda _, **p: iterative_stratification(_Y, 2, **p)),
    (TRAIN_TEST, lambda _, **p: multilabel_train_test_split(np.arange(8), y=_Y, **p)),
]

if RepeatFactorSampler is not None:
    _LABELS = [["a"], ["a", "b"], ["b"], ["c"], []]
    _RANKS = {"num_replicas": 4, "rank": 0}
    DECLARED += [
        (RepeatFactorSampler, lambda cls, **p: cls(_LABELS, **({"threshold": 0.5} | _RANKS | p))),
        (ClassAwareSampler, lambda cls, **p: cls(_LABELS, **(_RANKS | p))),
    ]


def _invalid_examples(rule):
    """A rule's invalid values; for any-of rules, those of each member that no member holds."""
    if not isinstance(rule, tuple):
        return rule.invalid_examples()
    return [v for r in rule for v in r.invalid_examples() if not any(m.holds(v) for m in rule)]


def _valid_example(rule):
    return rule[0].valid_example() if isinstance(rule, tuple) else rule.valid_example()


def _cases():
    for cls, build in DECLARED:
        for name, rule in cls._parameter_constraints.items():
            rule = RANDOM_STATE if name == "random_state" else rule
            if rule is None:
                continue
            for bad in _invalid_examples(rule):
                yield pytest.param(cls, build, name, bad, id=f"{cls.__name__}-{name}-{bad!r}")


@pytest.mark.parametrize(("cls", "build", "name", "bad"), list(_cases()))
def test_every_declared_constraint_refuses_its_invalid_values(cls, build, name, bad):
    with pytest.raises(ParameterError) as info:
        build(cls, **{name: bad})
    assert name in info.value.params
    assert name in str(info.value)


@pytest.mark.parametrize(("cls", "build"), DECLARED, ids=[c.__name__ for c, _ in DECLARED])
def test_declared_valid_examples_are_accepted(cls, build):
    for name, rule in cls._parameter_constraints.items():
        rule = RANDOM_STATE if name == "random_state" else rule
        if rule is not None:
            build(cls, **{name: _valid_example(rule)})


def test_interval_bounds_and_types():
    rule = Interval(int, 1, 10, closed="left")
    assert rule.holds(1) and rule.holds(9) and rule.holds(np.int64(5))
    assert not any(rule.holds(v) for v in (0, 10, 1.5, True, None, "3", math.nan))
    real = Interval(float, 0, 1, closed="neither", allow_none=True)
    assert real.holds(None) and real.holds(0.5) and real.holds(np.float32(0.25))
    assert not any(real.holds(v) for v in (0, 1.0, math.inf, math.nan))
    assert real.describe() == "a number in (0, 1) or None"
    for rule in (Interval(int, 1, None), Interval(float, None, 0, closed="neither"), real):
        assert rule.holds(rule.valid_example())
        assert not any(rule.holds(v) for v in rule.invalid_examples())


def test_options_bool_random_state_and_any_of():
    opts = Options(("a", "b"))
    assert opts.holds("a") and not opts.holds("c") and not opts.holds(None)
    assert Options((True, False)).holds(True) and not Options((1, 2)).holds(True)
    assert BOOL.holds(False) and not BOOL.holds(1)
    assert RANDOM_STATE.holds(np.random.default_rng(0)) and not RANDOM_STATE.holds(-1)
    either = {"k": (Interval(int, 1, None), Options(("auto",)))}
    validate_params(either, {"k": "auto"})
    validate_params(either, {"k": 3})
    with pytest.raises(
        ParameterError, match=r"k must be an integer in \[1, inf\) or one of 'auto'"
    ):
        validate_params(either, {"k": 0})
