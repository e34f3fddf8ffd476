"""The mlbalance options of :class:`~mlbalance.hf.MultilabelTrainer`, resolved and checked once.

They are the loss, sampling, prior-bias and threshold options of
:class:`~mlbalance.train.TrainConfig`, with the same names, recipes, defaults and declared
constraints: an option the caller leaves out comes from the recipe, else from
``TrainConfig``'s default, so ``MultilabelTrainer(..., recipe="long-tail")`` and
``mlbalance train --recipe long-tail`` train with the same remedies. Imports no torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

from mlbalance._params import validate_params
from mlbalance.train.config import RECIPES, TrainConfig
from mlbalance.train.options import UNSET, check_combinations

__all__ = ["HFOptions", "resolve_options"]


@dataclass(frozen=True)
class HFOptions:
    """The resolved mlbalance options of a :class:`~mlbalance.hf.MultilabelTrainer`."""

    recipe: str
    loss: str
    loss_params: dict[str, Any]
    sampler: str
    rfs_threshold: float | str
    rfs_power: float
    prior_bias: bool
    threshold_mode: str
    target_recall: float | None
    min_positives: int
    threshold_fallback: str
    threshold_smoothing: float
    threshold_cv: int | None
    threshold_guard: str
    head_min: int
    tail_max: int

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}


NAMES = tuple(f.name for f in fields(HFOptions))


def resolve_options(**given: Any) -> HFOptions:
    """Fill the options left :data:`UNSET` from the recipe, else ``TrainConfig``'s defaults,
    and check every value (a :class:`~mlbalance.errors.ParameterError` names the option).

    ``sampler=None`` means no sampler (``"none"``).
    """
    defaults = {f.name: f.metadata.get("default") for f in _config_fields()}
    rules = TrainConfig._parameter_constraints
    recipe = given.get("recipe", UNSET)
    recipe = defaults["recipe"] if recipe is UNSET else recipe
    validate_params({"recipe": rules["recipe"]}, {"recipe": recipe})
    presets = RECIPES[recipe]
    values: dict[str, Any] = {"recipe": recipe}
    explicit = set()
    for name in NAMES[1:]:
        value = given.get(name, UNSET)
        if value is UNSET:
            value = copy.deepcopy(presets.get(name, defaults[name]))
        else:
            explicit.add(name)
        if name == "sampler" and value is None:
            value = "none"
        values[name] = value
    validate_params({n: rules[n] for n in NAMES}, values)
    view = SimpleNamespace(**values, feature_columns=None, feature_prefix=None)
    check_combinations(view, explicit)  # e.g. threshold_guard steps aside for mode recall
    values["threshold_guard"] = view.threshold_guard
    return HFOptions(**values)


def _config_fields() -> tuple[Any, ...]:
    from mlbalance.train.config import option_fields

    return tuple(f for f in option_fields() if f.name in NAMES)
