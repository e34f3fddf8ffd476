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


def _build_resampler(cls, **params):
    obj = cls(**params)
    obj._validate_params()
    return obj


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
    (MLROS, _build_resampler),
    (MLRUS, _build_resampler),
    (MLSMOTE, _build_resampler),
    (REMEDIAL, _build_resampler),
    (TargetCounts, lambda cls, **p: _build_resampler(cls, **({"min_rows": 1} | p))),
    (MultilabelStratifiedKFold, _build_resampler),
    (RepeatedMultilabelStratifiedKFold, _build_resampler),
    (MultilabelStratifiedShuffleSplit, _build_resampler),
    (STRATIFY, lambda _, **p: iterative_stratification(_Y, 2, **p)),
    (TRAIN_TEST, lambda _, **p: multilabel_train_test_split(np.arange(8), y=_Y, **p)),
]


def _cases():
    for cls, build in DECLARED:
        for name, rule in cls._parameter_constraints.items():
            rule = RANDOM_STATE if name == "random_state" else rule
            if rule is None:
                continue
            for bad in rule.invalid_examples():
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
            build(cls, **{name: rule.valid_example()})


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
