"""scikit-learn splitters built on iterative stratification.

They follow the public :class:`sklearn.model_selection.BaseCrossValidator` contract
(``split(X, y, groups)``, ``get_n_splits``) and subclass nothing private, so they work in
``cross_val_score``, ``cross_validate`` and ``GridSearchCV``. Unlike scikit-learn's
``StratifiedKFold``, ``random_state`` matters with or without ``shuffle``: the algorithm
breaks ties at random.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.model_selection import BaseCrossValidator

from mlbalance._params import BOOL, Interval, Predicate, validate_params
from mlbalance.errors import ParameterError
from mlbalance.split._iterative import (
    ORDER,
    SPLIT_RANDOM_STATE,
    RandomState,
    iterative_stratification,
    make_rng,
)

__all__ = [
    "SIZE",
    "TRAIN_TEST_CONSTRAINTS",
    "MultilabelStratifiedKFold",
    "MultilabelStratifiedShuffleSplit",
    "RepeatedMultilabelStratifiedKFold",
    "multilabel_train_test_split",
]


def _n_rows(X: Any, y: Any) -> int:
    for obj in (X, y):
        if obj is None:
            continue
        shape = getattr(obj, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
        return len(obj)
    raise ParameterError("split needs X or y", param=("X", "y"))


def _require_y(y: Any, who: str) -> Any:
    if y is None:
        raise ParameterError(
            f"{who}.split needs y, the multilabel target to stratify on", param="y"
        )
    return y


def _check_lengths(n: int, y: Any, groups: Any) -> None:
    n_y = _n_rows(None, y)
    if n_y != n:
        raise ParameterError(f"X has {n} rows but y has {n_y}", param=("X", "y"))
    if groups is not None and len(groups) != n:
        raise ParameterError(f"X has {n} rows but groups has {len(groups)}", param="groups")


def _is_size(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    if isinstance(v, numbers.Integral):
        return int(v) >= 1
    return 0.0 < float(v) < 1.0


#: ``test_size`` / ``train_size``: a share in (0, 1), a row count >= 1, or None.
SIZE = Predicate(
    _is_size,
    "None, a float in (0, 1) or a row count >= 1",
    bad=(0, 0.0, 1.0, 1.5, -2, "x", True),
    good=0.25,
)


class _Declared:
    """Parameter checks through :mod:`mlbalance._params`, at split time (scikit-learn style:
    ``__init__`` only stores, so ``clone`` and ``set_params`` work)."""

    _parameter_constraints: ClassVar[Mapping[str, Any]] = {}

    def _validate_params(self) -> None:
        validate_params(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
        )


class MultilabelStratifiedKFold(_Declared, BaseCrossValidator):
    """K folds that keep the proportion of every label (iterative stratification).

    Each fold is the test set once. Folds come from
    :func:`~mlbalance.split.iterative_stratification` (Sechidis et al. 2011; label pairs
    with ``order=2``, Szymański and Kajdanowicz 2017).

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds, at least 2.
    order : {1, 2}, default 1
        Stratify labels (1) or label pairs (2).
    shuffle : bool, default False
        Process rows in a random order (otherwise in index order).
    random_state : int, numpy Generator or None
        Tie-breaks (always) and the shuffle. Pass an int for the same folds on every call.

    Notes
    -----
    ``groups`` given to :meth:`split` keeps the rows of each group in one fold. Rare labels
    spread over as many folds as they have rows.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]])
    >>> cv = MultilabelStratifiedKFold(n_splits=2, random_state=0)
    >>> [len(test) for _, test in cv.split(np.zeros(6), y)]
    [3, 3]
    """

    _parameter_constraints: ClassVar[Mapping[str, Any]] = {
        "n_splits": Interval(int, 2, None),
        "order": ORDER,
        "shuffle": BOOL,
        "random_state": SPLIT_RANDOM_STATE,
    }

    def __init__(
        self,
        n_splits: int = 5,
        *,
        order: int = 1,
        shuffle: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.n_splits = n_splits
        self.order = order
        self.shuffle = shuffle
        self.random_state = random_state

    def fold_ids(self, X: Any, y: Any, groups: Any = None) -> np.ndarray:
        """The fold (0 .. n_splits - 1) of every row."""
        self._validate_params()
        k = int(self.n_splits)
        y = _require_y(y, type(self).__name__)
        n = _n_rows(X, y)
        _check_lengths(n, y, groups)
        return iterative_stratification(
            y,
            k,
            order=self.order,
            groups=groups,
            shuffle=bool(self.shuffle),
            random_state=make_rng(self.random_state),
        )

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_indices, test_indices)`` for each fold.

        Parameters
        ----------
        X : array-like of shape (n_rows, ...)
            Only its length is used (``np.zeros(n)`` will do).
        y : label matrix
            Dense 0/1, sparse, LabelMatrix or list of label lists.
        groups : array-like, optional
            Group of each row; a group never straddles folds.
        """
        ids = self.fold_ids(X, y, groups)
        for j in range(int(self.n_splits)):
            test = np.flatnonzero(ids == j)
            train = np.flatnonzero(ids != j)
            yield train, test

    def _iter_test_masks(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[np.ndarray]:
        ids = self.fold_ids(X, y, groups)
        for j in range(int(self.n_splits)):
            yield ids == j

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds."""
        return int(self.n_splits)


class RepeatedMultilabelStratifiedKFold(_Declared, BaseCrossValidator):
    """:class:`MultilabelStratifiedKFold` repeated ``n_repeats`` times, shuffled each time.

    Parameters
    ----------
    n_splits : int, default 5
    n_repeats : int, default 10
    order : {1, 2}, default 1
    random_state : int, numpy Generator or None
        One generator for the call; each repetition draws its own seed from it.
    """

    _parameter_constraints: ClassVar[Mapping[str, Any]] = {
        "n_splits": Interval(int, 2, None),
        "n_repeats": Interval(int, 1, None),
        "order": ORDER,
        "random_state": SPLIT_RANDOM_STATE,
    }

    def __init__(
        self,
        n_splits: int = 5,
        *,
        n_repeats: int = 10,
        order: int = 1,
        random_state: RandomState = None,
    ) -> None:
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.order = order
        self.random_state = random_state

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` for every fold of every repetition."""
        self._validate_params()
        rng = make_rng(self.random_state)
        for _ in range(int(self.n_repeats)):
            cv = MultilabelStratifiedKFold(
                self.n_splits,
                order=self.order,
                shuffle=True,
                random_state=int(rng.integers(0, 2**63 - 1)),
            )
            yield from cv.split(X, y, groups)

    def _iter_test_masks(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[np.ndarray]:
        n = _n_rows(X, y)
        for _, test in self.split(X, y, groups):
            mask = np.zeros(n, dtype=bool)
            mask[test] = True
            yield mask

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """``n_splits * n_repeats``."""
        return int(self.n_splits) * int(self.n_repeats)


def _resolve_sizes(
    n: int, test_size: Any, train_size: Any, default_test: float = 0.1
) -> tuple[float, float]:
    """Train and test shares of ``n`` rows, as floats; ints are row counts."""

    def share(value: Any, name: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            rows = int(value)
            if not 1 <= rows <= n - 1:
                raise ParameterError(
                    f"{name}={rows} rows must be in [1, {n - 1}] for {n} rows", param=name
                )
            return float(rows) / n
        if isinstance(value, numbers.Real) and 0.0 < float(value) < 1.0:
            return float(value)
        raise ParameterError(
            f"{name} must be a float in (0, 1) or a row count, got {value!r}", param=name
        )

    test = share(test_size, "test_size")
    train = share(train_size, "train_size")
    if test is None and train is None:
        test = default_test
    if test is None:
        assert train is not None
        test = 1.0 - train
    if train is None:
        train = 1.0 - test
    if train + test > 1.0 + 1e-9:
        raise ParameterError(
            f"train_size + test_size must be at most 1, got {train:g} + {test:g}",
            param=("train_size", "test_size"),
        )
    return train, test


def _ratios(train: float, test: float) -> list[float]:
    rest = 1.0 - train - test
    return [train, test] if rest <= 1e-9 else [train, test, rest]


class MultilabelStratifiedShuffleSplit(_Declared, BaseCrossValidator):
    """Random train/test splits that keep the proportion of every label.

    Each of the ``n_splits`` iterations shuffles and runs iterative stratification with
    ratios ``[train_size, test_size]`` (plus a discarded remainder when they sum to less
    than 1).

    Parameters
    ----------
    n_splits : int, default 10
        Number of re-shuffled splits.
    test_size, train_size : float, int or None
        Shares (floats in (0, 1)) or row counts (ints). Default test 0.1, train the rest.
    order : {1, 2}, default 1
    random_state : int, numpy Generator or None
    ensure_eval_labels : bool, default False
        Every label with >= 2 rows gets at least one row in the test split.
    """

    _parameter_constraints: ClassVar[Mapping[str, Any]] = {
        "n_splits": Interval(int, 1, None),
        "test_size": SIZE,
        "train_size": SIZE,
        "order": ORDER,
        "random_state": SPLIT_RANDOM_STATE,
        "ensure_eval_labels": BOOL,
    }

    def __init__(
        self,
        n_splits: int = 10,
        *,
        test_size: float | int | None = None,
        train_size: float | int | None = None,
        order: int = 1,
        random_state: RandomState = None,
        ensure_eval_labels: bool = False,
    ) -> None:
        self.n_splits = n_splits
        self.test_size = test_size
        self.train_size = train_size
        self.order = order
        self.random_state = random_state
        self.ensure_eval_labels = ensure_eval_labels

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` for each iteration."""
        self._validate_params()
        reps = int(self.n_splits)
        y = _require_y(y, type(self).__name__)
        n = _n_rows(X, y)
        _check_lengths(n, y, groups)
        train, test = _resolve_sizes(n, self.test_size, self.train_size)
        rng = make_rng(self.random_state)
        for _ in range(reps):
            ids = iterative_stratification(
                y,
                _ratios(train, test),
                order=self.order,
                groups=groups,
                shuffle=True,
                random_state=rng,
                ensure_eval_labels=self.ensure_eval_labels,
                eval_splits=[1],
            )
            yield np.flatnonzero(ids == 0), np.flatnonzero(ids == 1)

    def _iter_test_masks(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[np.ndarray]:
        n = _n_rows(X, y)
        for _, test in self.split(X, y, groups):
            mask = np.zeros(n, dtype=bool)
            mask[test] = True
            yield mask

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of iterations."""
        return int(self.n_splits)


def _take(array: Any, idx: np.ndarray) -> Any:
    if hasattr(array, "iloc"):
        return array.iloc[idx]
    if hasattr(array, "take") and hasattr(array, "matrix") and hasattr(array, "names"):
        return array.take(idx)  # LabelMatrix
    if hasattr(array, "shape") and hasattr(array, "__getitem__"):
        return array[idx]
    if isinstance(array, (list, tuple)):
        return [array[i] for i in idx]
    raise ParameterError(f"cannot index an object of type {type(array).__name__}", param="arrays")


#: Declared constraints of :func:`multilabel_train_test_split`'s options.
TRAIN_TEST_CONSTRAINTS: dict[str, Any] = {
    "test_size": SIZE,
    "train_size": SIZE,
    "order": ORDER,
    "shuffle": BOOL,
    "random_state": SPLIT_RANDOM_STATE,
    "ensure_eval_labels": BOOL,
}


def multilabel_train_test_split(
    *arrays: Any,
    y: Any,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    order: int = 1,
    shuffle: bool = True,
    random_state: RandomState = None,
    groups: Any = None,
    ensure_eval_labels: bool = False,
) -> list[Any]:
    """Split arrays into train and test parts, stratified on the multilabel target ``y``.

    Like :func:`sklearn.model_selection.train_test_split` with ``stratify=y``. Pass ``y``
    among ``arrays`` too if you want it split.

    Parameters
    ----------
    *arrays : sequence of indexables
        Lists, numpy arrays, scipy sparse matrices, DataFrames or LabelMatrix objects, all
        with the same number of rows as ``y``.
    y : label matrix
        The target to stratify on (keyword only).
    test_size, train_size : float, int or None
        As in :class:`MultilabelStratifiedShuffleSplit`. Default test 0.25 when both are
        None, as scikit-learn does.
    order : {1, 2}
    shuffle : bool, default True
        Process rows in random order (ties are random either way).
    random_state : int, numpy Generator or None
    groups : array-like, optional
        Rows of a group stay on one side.
    ensure_eval_labels : bool
        Every label with >= 2 rows gets a row in the test part.

    Returns
    -------
    list
        ``[a_train, a_test, b_train, b_test, ...]`` in the order of ``arrays``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(8).reshape(8, 1)
    >>> y = np.array([[1, 0]] * 4 + [[0, 1]] * 4)
    >>> X_tr, X_te, y_tr, y_te = multilabel_train_test_split(X, y, y=y, test_size=0.5,
    ...                                                      random_state=0)
    >>> y_te.sum(axis=0).tolist()
    [2, 2]
    """
    validate_params(
        TRAIN_TEST_CONSTRAINTS,
        {
            "test_size": test_size,
            "train_size": train_size,
            "order": order,
            "shuffle": shuffle,
            "random_state": random_state,
            "ensure_eval_labels": ensure_eval_labels,
        },
    )
    if not arrays:
        raise ParameterError(
            "multilabel_train_test_split needs at least one array to split", param="arrays"
        )
    n = _n_rows(None, y)
    for pos, arr in enumerate(arrays):
        if _n_rows(arr, None) != n:
            raise ParameterError(
                f"array {pos} has {_n_rows(arr, None)} rows but y has {n}", param="arrays"
            )
    train, test = _resolve_sizes(n, test_size, train_size, default_test=0.25)
    ids = iterative_stratification(
        y,
        _ratios(train, test),
        order=order,
        groups=groups,
        shuffle=shuffle,
        random_state=random_state,
        ensure_eval_labels=ensure_eval_labels,
        eval_splits=[1],
    )
    tr, te = np.flatnonzero(ids == 0), np.flatnonzero(ids == 1)
    out: list[Any] = []
    for arr in arrays:
        out.extend([_take(arr, tr), _take(arr, te)])
    return out
