"""Iterative stratified splitting of multilabel data.

* :func:`iterative_stratification` -- one split id per row, for any ratios or k folds,
  first order (Sechidis, Tsoumakas and Vlahavas 2011) or second order (label pairs,
  Szymański and Kajdanowicz 2017), with groups and rare-label spreading.
* :class:`MultilabelStratifiedKFold`, :class:`RepeatedMultilabelStratifiedKFold`,
  :class:`MultilabelStratifiedShuffleSplit`, :func:`multilabel_train_test_split` --
  scikit-learn splitters on the public ``BaseCrossValidator`` contract.
* :func:`stratified_split` -- the same split ids and every move of the rare-label repair pass
  (:class:`Repairs`).
* :func:`split_report` -- LD, ED, FZ, labels absent per split, label counts, and what the
  repair pass moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlbalance.split._iterative import (
    StratifiedSplit,
    check_ratios,
    iterative_stratification,
    stratified_split,
)
from mlbalance.split._quality import SplitReport, split_label_counts, split_report
from mlbalance.split._repair import Repairs

if TYPE_CHECKING:
    from mlbalance.split._sklearn import (
        MultilabelStratifiedKFold,
        MultilabelStratifiedShuffleSplit,
        RepeatedMultilabelStratifiedKFold,
        multilabel_train_test_split,
    )

_SKLEARN_NAMES = (
    "MultilabelStratifiedKFold",
    "MultilabelStratifiedShuffleSplit",
    "RepeatedMultilabelStratifiedKFold",
    "multilabel_train_test_split",
)


def __getattr__(name: str) -> Any:
    # scikit-learn takes a second or more to import; load it only for the splitter classes.
    if name in _SKLEARN_NAMES:
        from mlbalance.split import _sklearn

        return getattr(_sklearn, name)
    raise AttributeError(f"module 'mlbalance.split' has no attribute {name!r}")


__all__ = [
    "MultilabelStratifiedKFold",
    "MultilabelStratifiedShuffleSplit",
    "Repairs",
    "RepeatedMultilabelStratifiedKFold",
    "SplitReport",
    "StratifiedSplit",
    "check_ratios",
    "iterative_stratification",
    "multilabel_train_test_split",
    "split_label_counts",
    "split_report",
    "stratified_split",
]
