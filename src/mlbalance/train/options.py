"""The vocabulary of training options: choices, recipes and the constraints of each value.

Read by :class:`mlbalance.train.config.TrainConfig`. The loss, metric and threshold choices
are :class:`Registry` views of the modules that own them (a loss added to
``mlbalance.train.losses.LOSSES`` is at once a choice of ``loss``), read when first needed so
that importing this module imports neither torch nor the metrics code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlbalance._params import Interval, Options, Predicate

__all__ = [
    "COMPILE_MODES",
    "LOSSES",
    "METRICS",
    "METRICS_MINIMISED",
    "PRECISIONS",
    "RECIPES",
    "SAMPLERS",
    "THRESHOLD_FALLBACKS",
    "THRESHOLD_MODES",
    "UNSET",
    "Registry",
]


class _Unset:
    """The default of every field before resolution: "the caller did not give this"."""

    def __repr__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Unset:
        return self


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Registry:
    """The options of a parameter, read from the module that owns them on first use.

    A constraint like :class:`mlbalance._params.Options` whose values live elsewhere (a loss
    added to ``mlbalance.train.losses.LOSSES`` is at once a choice of ``loss``), read lazily
    so that importing this module imports neither torch nor the metrics code.
    """

    module: str
    attr: str
    first: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """The allowed values, now."""
        return self.first + tuple(getattr(importlib.import_module(self.module), self.attr))

    def _options(self) -> Options:
        return Options(self.names())

    def holds(self, value: Any) -> bool:
        """True when *value* is one of :meth:`names`."""
        return self._options().holds(value)

    def describe(self) -> str:
        """``one of 'a', 'b'``."""
        return self._options().describe()

    def invalid_examples(self) -> list[Any]:
        """Values that are not options (for generated tests)."""
        return self._options().invalid_examples()

    def valid_example(self) -> Any:
        """The first option."""
        return self.names()[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __len__(self) -> int:
        return len(self.names())


SAMPLERS = ("none", "repeat-factor", "class-aware")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``torch.compile`` modes of the training forward/backward ("off": eager).
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
METRICS_MINIMISED = ("val_loss",)
#: Loss names: the keys of ``mlbalance.train.losses.LOSSES`` (imports torch when read).
LOSSES = Registry("mlbalance.train.losses", "LOSSES")
#: What ``metric`` may select on: ``val_loss`` (minimised) and the scores of
#: :data:`mlbalance.metrics.SCORES` (maximised).
METRICS = Registry("mlbalance.metrics", "SCORES", METRICS_MINIMISED)
THRESHOLD_MODES = Registry("mlbalance.thresholds", "MODES")
THRESHOLD_FALLBACKS = Registry("mlbalance.thresholds", "FALLBACKS")

#: Named recipes: option values applied under whatever the caller sets explicitly. The
#: evidence for each is the recipe study in BENCHMARKS.md (frozen all-MiniLM-L6-v2 embeddings,
#: standardised, 3 seeds, recipes ranked on dev; a remedy replaces the baseline only when its
#: dev gain is larger than the seed noise).
RECIPES: dict[str, dict[str, Any]] = {
    # BCE, head bias from the label priors, per-label thresholds tuned on val. On GoEmotions
    # (28 labels, rarest 77 rows) it had the best test macro F1 (0.397) and no remedy beat it
    # on dev by more than 0.001.
    "default": {},
    # Hundreds of labels with a long tail: class-aware sampling (Shen et al. 2016) + tuned
    # thresholds smoothed toward the global one (pseudo-count 30). On the 500-label synthetic
    # set, against BCE + tuned thresholds: macro F1 +1.7, tail-bucket recall +12.4 points,
    # micro F1 -1.4 (best on dev of the recipes that ship tuned thresholds).
    "long-tail": {"sampler": "class-aware", "threshold_smoothing": 30.0},
    # When one cut at 0.5 must serve every label (no validation data to tune thresholds on):
    # BCE with bounded sqrt-inverse positive weights (at most 10). At 0.5: macro F1 0.359 on
    # GoEmotions (BCE at 0.5: 0.198) and 0.544 on the synthetic set (BCE at 0.5: 0.472).
    "single-threshold": {
        "loss": "weighted-bce",
        "loss_params": {"scheme": "sqrt-inverse", "max_weight": 10.0},
    },
}

# ------------------------------------------------------------------------------ constraints
PATH = Predicate(
    lambda v: isinstance(v, (str, os.PathLike)) and os.fspath(v) != "",
    "a file or folder path",
    bad=("", None, 3),
    good="data.parquet",
)
OPTIONAL_PATH = Predicate(
    lambda v: v is None or PATH.holds(v), "a path or None", bad=("", 3), good=None
)
NAME = Predicate(
    lambda v: isinstance(v, str) and v != "", "a non-empty string", bad=("", None, 3), good="x"
)
OPTIONAL_NAME = Predicate(
    lambda v: v is None or NAME.holds(v), "a non-empty string or None", bad=("", 3), good=None
)
HEADER_NAMES = Predicate(
    lambda v: (
        v is None
        or (isinstance(v, str) and v.strip(", ") != "")
        or (isinstance(v, (list, tuple)) and len(v) > 0 and all(NAME.holds(x) for x in v))
    ),
    "column names ('text,labels,id' or a list of names) or None",
    bad=("", [], 3),
    good="text,labels,id",
)
COLUMN_NAMES = Predicate(
    HEADER_NAMES.test,
    "column names ('a,b,c' or a list of names) or None",
    bad=("", [], 3),
    good="f1,f2",
)


def column_names(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """An option of column names, ``"a,b"`` or ``["a", "b"]``, as a tuple; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(h.strip() for h in value.split(",") if h.strip())
    return tuple(value)


def _codec_known(name: object) -> bool:
    import codecs

    try:
        codecs.lookup(str(name))
    except LookupError:
        return False
    return isinstance(name, str)


ENCODING = Predicate(
    lambda v: v is None or _codec_known(v),
    "a text codec Python knows (e.g. latin-1, cp1252) or None",
    bad=("klingon", "", 3),
    good="latin-1",
)
RFS_THRESHOLD = Predicate(
    lambda v: v == "auto" or Interval(float, 0, 1, closed="right").holds(v),
    "a label frequency in (0, 1] or 'auto'",
    bad=(0, 1.5, "x", None, True),
    good=0.01,
)
LOSS_PARAMS = Predicate(
    lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    "a mapping of loss parameter names to values",
    bad=(["gamma=2"], "gamma=2", None),
    good={},
)
