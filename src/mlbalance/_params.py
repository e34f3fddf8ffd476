"""Declared parameter constraints: the one validation style of every options object.

As imbalanced-learn and scikit-learn do with ``_parameter_constraints``: a class (a resampler, a
splitter, a sampler, :class:`~mlbalance.train.config.TrainConfig`, the threshold tuner) declares
``{name: constraint}`` once, and :func:`validate_params` checks every value against it, raising
:class:`~mlbalance.errors.ParameterError` that names the parameter (the CLI turns the name into
the flag the user typed). A constraint is an :class:`Interval`, an :class:`Options`,
:data:`RANDOM_STATE`, :data:`BOOL`, or a tuple of these (any one may hold).

Each constraint can also produce values that break it (:meth:`Interval.invalid_examples`), so
tests are generated over the declarations (``tests/test_params.py``): every declared bound of
every options object is tried, not just the ones someone thought of.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbalance.errors import ParameterError

__all__ = [
    "BOOL",
    "RANDOM_STATE",
    "Constraint",
    "Interval",
    "Options",
    "Predicate",
    "validate_params",
]


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]`` (open ends with ``closed``); ``None`` = unbounded.

    Parameters
    ----------
    kind : type
        ``int`` (integers only) or ``float`` (any finite real number).
    low, high : float or None
        Bounds.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    allow_none : bool
        ``None`` is accepted too.
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"
    allow_none: bool = False

    def holds(self, value: Any) -> bool:
        """True when *value* satisfies the constraint."""
        if value is None:
            return self.allow_none
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        x = float(value)
        lo_ok = self.low is None or (
            x >= self.low if self.closed in ("both", "left") else x > self.low
        )
        hi_ok = self.high is None or (
            x <= self.high if self.closed in ("both", "right") else x < self.high
        )
        return bool(lo_ok and hi_ok)

    def describe(self) -> str:
        """``an integer in [1, inf)`` and the like."""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        lb = "[" if self.closed in ("both", "left") and self.low is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        what = "an integer" if self.kind is int else "a number"
        return f"{what} in {lb}{lo}, {hi}{rb}" + (" or None" if self.allow_none else "")

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ParameterError` naming *name* unless *value* holds."""
        if not self.holds(value):
            raise ParameterError(f"{name} must be {self.describe()}, got {value!r}", param=name)

    def invalid_examples(self) -> list[Any]:
        """Values that break the constraint (for generated tests)."""
        out: list[Any] = ["x", True, math.nan]
        if not self.allow_none:
            out.append(None)
        if self.low is not None:
            out.append(self.low if self.closed in ("right", "neither") else self.low - 1)
        if self.high is not None:
            out.append(self.high if self.closed in ("left", "neither") else self.high + 1)
        if self.kind is int:
            base = self.low if self.low is not None else 0
            out.append(float(base) + 1.5)
        return out

    def valid_example(self) -> Any:
        """One value that holds."""
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            value: float = (lo + hi) / 2
        elif lo is not None:
            value = lo + 1
        elif hi is not None:
            value = hi - 1
        else:
            value = 0
        return math.ceil(value) if self.kind is int else float(value)


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def holds(self, value: Any) -> bool:
        """True when *value* is one of the options."""
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        """``one of 'a', 'b'``."""
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ParameterError` naming *name* unless *value* is an option."""
        if not self.holds(value):
            raise ParameterError(f"{name} must be {self.describe()}, got {value!r}", param=name)

    def invalid_examples(self) -> list[Any]:
        """Values that are not options."""
        return [v for v in ("bogus", -1, None, 1.5) if not self.holds(v)]

    def valid_example(self) -> Any:
        """The first option."""
        return self.values[0]


@dataclass(frozen=True)
class Predicate:
    """A rule of one parameter that is neither a range nor a set (with its description)."""

    test: Any  # Callable[[Any], bool]
    description: str
    bad: tuple[Any, ...] = ()
    good: Any = None

    def holds(self, value: Any) -> bool:
        """True when the rule accepts *value*."""
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        """The rule in words."""
        return self.description

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ParameterError` naming *name* unless the rule accepts *value*."""
        if not self.holds(value):
            raise ParameterError(f"{name} must be {self.description}, got {value!r}", param=name)

    def invalid_examples(self) -> list[Any]:
        """The declared bad values."""
        return list(self.bad)

    def valid_example(self) -> Any:
        """The declared good value."""
        return self.good


#: ``random_state``: None, a non-negative int, or a numpy Generator.
RANDOM_STATE = Predicate(
    lambda v: (
        v is None
        or isinstance(v, np.random.Generator)
        or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 0)
    ),
    "None, a non-negative int or a numpy Generator",
    bad=(-1, 1.5, "seed", True),
    good=0,
)

#: A flag: exactly True or False.
BOOL = Predicate(
    lambda v: isinstance(v, (bool, np.bool_)),
    "True or False",
    bad=("yes", 2, None),
    good=True,
)

Constraint = Interval | Options | Predicate | tuple[Any, ...]


def _holds(rule: Any, value: Any) -> bool:
    if isinstance(rule, tuple):
        return any(_holds(r, value) for r in rule)
    return bool(rule.holds(value))


def _describe(rule: Any) -> str:
    if isinstance(rule, tuple):
        return " or ".join(_describe(r) for r in rule)
    return str(rule.describe())


def validate_params(constraints: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Check each value against its declared constraint.

    Parameters
    ----------
    constraints : mapping
        ``{name: constraint}``; a tuple of constraints means any one may hold; ``None`` means
        no check.
    values : mapping
        ``{name: value}`` (every name of *constraints* must be present).

    Raises
    ------
    ParameterError
        Naming the first parameter that breaks its constraint, with what it must be.
    """
    for name, rule in constraints.items():
        if rule is None:
            continue
        value = values[name]
        if not _holds(rule, value):
            raise ParameterError(f"{name} must be {_describe(rule)}, got {value!r}", param=name)
