"""The core data type: a 0/1 label matrix (scipy CSR) with ordered label names.

Every algorithm in mlbalance takes a :class:`LabelMatrix` (or anything
:func:`as_label_matrix` accepts) and knows nothing of files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance.errors import InputError

__all__ = ["LabelMatrix", "as_label_matrix"]


def _canonical_csr(matrix: sp.spmatrix | sp.sparray, *, collapse: bool = True) -> sp.csr_matrix:
    """Return a CSR copy with sorted, de-duplicated indices and all stored values 1 (uint8).

    With ``collapse`` a (row, label) pair stored twice (a label repeated in a row's list) counts
    once; without it, the summed value must still be 0/1.
    """
    csr = sp.csr_matrix(matrix, dtype=np.int64 if not collapse else None)
    if collapse:
        csr = sp.csr_matrix(
            (np.ones(csr.nnz, dtype=np.int64), csr.indices, csr.indptr), shape=csr.shape
        )
        csr.sum_duplicates()
        csr.data[:] = 1
    csr.eliminate_zeros()
    csr.sum_duplicates()
    csr.sort_indices()
    data = csr.data
    if data.size and not np.isin(data, (0, 1)).all() and np.issubdtype(data.dtype, np.number):
        bad = data[~np.isin(data, (0, 1))][0]
        raise InputError(f"label matrix must be 0/1, found value {bad!r}")
    return sp.csr_matrix(
        (np.ones(csr.nnz, dtype=np.uint8), csr.indices, csr.indptr), shape=csr.shape
    )


@dataclass(frozen=True, eq=False)
class LabelMatrix:
    """A multilabel target: rows x labels, 0/1, with ordered label names.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Shape ``(n_rows, n_labels)``, dtype uint8, values 1, sorted indices.
        Build one with :meth:`from_lists`, :meth:`from_dense` or :func:`as_label_matrix`,
        which canonicalise the matrix.
    names : tuple of str
        The label vocabulary in column order. The order is stable: splits and shards
        of one dataset share it, so label ids agree across files.
    """

    matrix: sp.csr_matrix
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.matrix.shape[1] != len(self.names):
            raise InputError(
                f"label matrix has {self.matrix.shape[1]} columns but {len(self.names)} names"
            )
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise InputError(f"duplicate label name {dup!r} in the label vocabulary")

    # --- shape -----------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.matrix.shape[0])

    @property
    def n_labels(self) -> int:
        """Number of labels (columns)."""
        return int(self.matrix.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_labels)``."""
        return self.n_rows, self.n_labels

    @property
    def nnz(self) -> int:
        """Number of (row, label) positives."""
        return int(self.matrix.nnz)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"LabelMatrix(n_rows={self.n_rows}, n_labels={self.n_labels}, nnz={self.nnz})"

    # --- summaries -----------------------------------------------------------------
    def counts(self) -> np.ndarray:
        """Rows per label, int64, in column order."""
        return np.bincount(self.matrix.indices, minlength=self.n_labels).astype(np.int64)

    def row_sizes(self) -> np.ndarray:
        """Labels per row, int64."""
        return np.diff(self.matrix.indptr).astype(np.int64)

    def label_index(self) -> dict[str, int]:
        """Map label name to column id."""
        return {name: i for i, name in enumerate(self.names)}

    # --- selection and conversion ----------------------------------------------------------
    def take(self, rows: Sequence[int] | np.ndarray) -> LabelMatrix:
        """Rows selected by integer index (repeats allowed), same vocabulary."""
        idx = np.asarray(rows, dtype=np.int64)
        return LabelMatrix(self.matrix[idx], self.names)

    def with_names(self, names: Sequence[str]) -> LabelMatrix:
        """Re-index to vocabulary *names* (a superset in any order); new labels get 0 rows."""
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.names if n not in index]
        if missing:
            raise InputError(f"labels {missing[:5]} are not in the target vocabulary")
        remap = np.array([index[n] for n in self.names], dtype=np.int64)
        m = self.matrix
        new = sp.csr_matrix((m.data, remap[m.indices], m.indptr), shape=(self.n_rows, len(names)))
        return LabelMatrix(_canonical_csr(new), tuple(names))

    def to_dense(self, dtype: Any = np.uint8) -> np.ndarray:
        """Dense ``(n_rows, n_labels)`` array."""
        return self.matrix.toarray().astype(dtype, copy=False)

    def to_lists(self) -> list[list[str]]:
        """Each row's label names, in vocabulary order."""
        names = np.asarray(self.names, dtype=object)
        ind, ptr = self.matrix.indices, self.matrix.indptr
        return [list(names[ind[ptr[i] : ptr[i + 1]]]) for i in range(self.n_rows)]

    # --- constructors -----------------------------------------------------------------
    @classmethod
    def from_lists(
        cls, rows: Iterable[Iterable[Any]], names: Sequence[str] | None = None
    ) -> LabelMatrix:
        """Build from one iterable of labels per row.

        Labels may be strings or ints; they are turned into strings. Duplicates
        within a row count once. Without *names*, the vocabulary is the sorted set
        of labels seen (numerically when all are ints).
        """
        lists = [[lab for lab in row] for row in rows]
        if names is None:
            seen = {lab for row in lists for lab in row}
            if all(isinstance(s, (int, np.integer)) for s in seen):
                names = [str(s) for s in sorted(seen)]
            else:
                names = sorted(str(s) for s in seen)
        index = {n: i for i, n in enumerate(names)}
        indptr = np.zeros(len(lists) + 1, dtype=np.int64)
        cols: list[int] = []
        for i, row in enumerate(lists):
            for lab in row:
                key = str(lab)
                if key not in index:
                    raise InputError(f"row {i}: label {key!r} is not in the label vocabulary")
                cols.append(index[key])
            indptr[i + 1] = len(cols)
        mat = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.uint8), np.asarray(cols, dtype=np.int64), indptr),
            shape=(len(lists), len(names)),
        )
        return cls(_canonical_csr(mat), tuple(str(n) for n in names))

    @classmethod
    def from_dense(cls, array: Any, names: Sequence[str] | None = None) -> LabelMatrix:
        """Build from a dense 0/1 array-like of shape ``(n_rows, n_labels)``."""
        arr = np.asarray(array)
        if arr.ndim != 2:
            raise InputError(f"label array must be 2-D (rows x labels), got shape {arr.shape}")
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InputError(f"label array must be numeric 0/1, got dtype {arr.dtype}")
        if arr.size and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise InputError("label array contains NaN or infinite values")
        bad = ~np.isin(arr, (0, 1))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(f"label array must be 0/1: row {r}, column {c} is {arr[r, c]!r}")
        names = _default_names(arr.shape[1]) if names is None else names
        return cls(
            _canonical_csr(sp.csr_matrix(arr.astype(np.uint8)), collapse=False),
            tuple(map(str, names)),
        )

    @classmethod
    def from_sparse(cls, matrix: Any, names: Sequence[str] | None = None) -> LabelMatrix:
        """Build from any scipy sparse matrix or array of 0/1."""
        names = _default_names(matrix.shape[1]) if names is None else names
        return cls(_canonical_csr(matrix, collapse=False), tuple(map(str, names)))


def _default_names(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def as_label_matrix(y: Any, names: Sequence[str] | None = None) -> LabelMatrix:
    """Turn what a user holds into a :class:`LabelMatrix`.

    Parameters
    ----------
    y : LabelMatrix, array-like, scipy sparse matrix, pandas.DataFrame or list of lists
        A dense 0/1 array, any scipy sparse matrix, a DataFrame of 0/1 columns (its
        column names become the label names), or one list of labels per row.
    names : sequence of str, optional
        Label names; for a list of lists, the vocabulary (and its order).

    Returns
    -------
    LabelMatrix
    """
    if isinstance(y, LabelMatrix):
        return y if names is None else y.with_names(names)
    if sp.issparse(y):
        return LabelMatrix.from_sparse(y, names)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(y, pd.DataFrame):
        cols = [str(c) for c in y.columns] if names is None else names
        return LabelMatrix.from_dense(y.to_numpy(), cols)
    if isinstance(y, np.ndarray):
        return LabelMatrix.from_dense(y, names)
    if isinstance(y, (list, tuple)) or (pd is not None and isinstance(y, pd.Series)):
        seq = list(y)
        if not seq:
            raise InputError("label input is empty: no rows")
        if not all(isinstance(r, (list, tuple, set, frozenset, np.ndarray)) for r in seq):
            bad = next(
                r for r in seq if not isinstance(r, (list, tuple, set, frozenset, np.ndarray))
            )
            raise InputError(
                "label input must be a 2-D 0/1 array, a sparse matrix, a DataFrame or a list "
                f"of label lists; found a row of type {type(bad).__name__}"
            )
        # As scikit-learn's type_of_target: equal-length rows of 0/1 are an indicator matrix.
        if names is None and _looks_indicator(seq):
            return LabelMatrix.from_dense(np.asarray(seq))
        return LabelMatrix.from_lists(seq, names)
    raise InputError(f"cannot use {type(y).__name__} as a label matrix")


def _looks_indicator(seq: list[Any]) -> bool:
    """True when every row is an equal-length sequence of 0/1 numbers (an indicator matrix)."""
    try:
        arr = np.asarray(seq)
    except ValueError:
        return False
    return (
        arr.ndim == 2
        and arr.dtype != object
        and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool)
        and bool(np.isin(arr, (0, 1)).all())
    )
