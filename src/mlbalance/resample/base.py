"""The common frame of every resampler: parameter checks, the seeded generator, results.

In the style of imbalanced-learn's ``SamplerMixin``: a public template method
(:meth:`BaseResampler.fit_resample`) checks the parameters once (against the class's
``_parameter_constraints``), turns the target into a :class:`~mlbalance.labels.LabelMatrix`,
makes ONE :class:`numpy.random.Generator` from ``random_state`` and passes it down to the
algorithm's ``_resample``; it then restores the caller's containers.

Every resampler describes its output as a :class:`Resampled`: for each output row the input
row it comes from (``indices``), the output labels, and which rows are synthetic. Index-based
methods (ML-ROS, ML-RUS, REMEDIAL, target counts) decide from the labels alone
(:meth:`BaseResampler.sample`), so a caller holding text in a file copies rows by index.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from mlbalance._params import RANDOM_STATE, Interval, Options, validate_params
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix, as_label_matrix

__all__ = [
    "BaseResampler",
    "Interval",
    "Options",
    "Resampled",
    "imbalance_measures",
    "irlbl_and_mean_ir",
    "take_rows",
    "worse_imbalance",
]


# --- imbalance measures: one implementation, mlbalance.measures ----------------------------------
def irlbl_and_mean_ir(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """IRLbl per label (``inf`` for a label with no row) and MeanIR, from label counts.

    Computed by :mod:`mlbalance.measures` (:func:`~mlbalance.measures.irlbl_of_counts`,
    :func:`~mlbalance.measures.mean_ir_of_counts`), the code behind ``mlbalance analyse``, so
    that a resampler decides on the very figures the report prints (Charte et al. 2015).
    Minority labels are ``isfinite(ir) & (ir > mean)``, majority labels ``ir < mean``.
    """
    from mlbalance import measures

    return measures.irlbl_of_counts(counts), measures.mean_ir_of_counts(counts)


def imbalance_measures(labels: LabelMatrix) -> dict[str, float]:
    """``mean_ir``, ``max_ir``, ``cvir`` and ``scumble`` of a label matrix (via :mod:`mlbalance.measures`)."""
    from mlbalance import measures

    if labels.n_rows == 0 or labels.nnz == 0:
        return {"mean_ir": 0.0, "max_ir": 0.0, "cvir": 0.0, "scumble": 0.0}
    return {
        "mean_ir": float(measures.mean_ir(labels)),
        "max_ir": float(measures.max_ir(labels)),
        "cvir": float(measures.cvir(labels)),
        "scumble": float(measures.scumble(labels)),
    }


# --- parameter constraints: declared per class, checked by mlbalance._params -----------------
# --- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resampled:
    """What a resampler did, row by row.

    Attributes
    ----------
    indices : numpy.ndarray of int64
        For each output row, the input row it comes from (for a synthetic row: its seed).
    labels : LabelMatrix
        The output labels (equal to ``input.take(indices)`` for pure row copies).
    n_input : int
        Number of input rows.
    synthetic : numpy.ndarray of bool
        True for output rows that are new feature vectors (MLSMOTE), not copies.
    neighbour : numpy.ndarray of int64
        For a synthetic row, the reference neighbour (an input row); -1 otherwise.
    relabelled : numpy.ndarray of bool
        True for output rows that copy an input row (kept or extra copy) with other labels than
        that row's (REMEDIAL). Synthetic rows are new rows, counted as synthetic only.
    notes : tuple of str
        What the method did other than asked, and why, one sentence each (e.g. ML-ROS stopping
        before ``percentage`` because every minority bag reached MeanIR).
    worse : dict
        The measures the output made worse: ``{"mean_ir": (before, after), "max_ir": ...}``
        (a warning says so too).
    """

    indices: np.ndarray
    labels: LabelMatrix
    n_input: int
    synthetic: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    neighbour: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    relabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    notes: tuple[str, ...] = ()
    worse: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.indices)
        if not len(self.synthetic):
            object.__setattr__(self, "synthetic", np.zeros(n, dtype=bool))
        if not len(self.neighbour):
            object.__setattr__(self, "neighbour", np.full(n, -1, dtype=np.int64))
        if not len(self.relabelled):
            object.__setattr__(self, "relabelled", np.zeros(n, dtype=bool))

    @property
    def n_output(self) -> int:
        """Number of output rows."""
        return len(self.indices)

    @property
    def index_only(self) -> bool:
        """True when every output row is a plain copy of an input row."""
        return not (self.synthetic.any() or self.relabelled.any())

    def copies(self) -> np.ndarray:
        """How many times each input row appears in the output as a copy (not synthetic)."""
        return np.bincount(self.indices[~self.synthetic], minlength=self.n_input)

    def report(self) -> dict[str, Any]:
        """Every input row accounted for, and what the method did other than asked.

        ``kept + dropped == input_rows`` and ``kept + extra_copies + synthetic ==
        output_rows``; ``relabelled`` counts kept rows and copies whose labels changed (never
        synthetic rows). ``notes`` lists :attr:`notes`; ``worse`` the measures made worse,
        ``{"mean_ir": {"before": b, "after": a}, ...}``.
        """
        copies = self.copies()
        kept = int((copies > 0).sum())
        return {
            "input_rows": int(self.n_input),
            "output_rows": int(self.n_output),
            "kept": kept,
            "dropped": int(self.n_input - kept),
            "extra_copies": int(copies.sum() - kept),
            "synthetic": int(self.synthetic.sum()),
            "relabelled": int((self.relabelled & ~self.synthetic).sum()),
            "notes": list(self.notes),
            "worse": {k: {"before": b, "after": a} for k, (b, a) in self.worse.items()},
        }


_MEASURE_NAMES = {"mean_ir": "MeanIR", "max_ir": "MaxIR"}


def worse_imbalance(
    before: LabelMatrix, after: LabelMatrix
) -> tuple[dict[str, tuple[float, float]], str]:
    """MeanIR and MaxIR that went up from *before* to *after*, and why, in words.

    IRLbl is ``max count / count`` and MeanIR its mean, so the reason names the labels whose
    IRLbl rose most (with their rows and IRLbl before and after) and what happened to the most
    frequent label, the numerator of every IRLbl.
    """
    cb, ca = before.counts(), after.counts()
    if cb.size == 0:
        return {}, ""
    irb, mb = irlbl_and_mean_ir(cb)
    ira, ma = irlbl_and_mean_ir(ca)
    fb, fa = irb[np.isfinite(irb)], ira[np.isfinite(ira)]
    figures = {
        "mean_ir": (mb, ma),
        "max_ir": (float(fb.max()) if fb.size else np.nan, float(fa.max()) if fa.size else np.nan),
    }
    worse = {k: (float(b), float(a)) for k, (b, a) in figures.items() if a > b * (1 + 1e-12)}
    if not worse:
        return {}, ""
    # MeanIR is the mean of max count / count: name the labels whose IRLbl rose most, and
    # the numerator (the most frequent label's rows)
    names = before.names
    both = np.flatnonzero(np.isfinite(irb) & np.isfinite(ira))
    rise = ira[both] - irb[both]
    top = both[np.argsort(-rise, kind="stable")[:3]]
    top = top[ira[top] > irb[top]]
    parts = [
        f"{names[j]!r} {int(cb[j]):,} -> {int(ca[j]):,} rows ({irb[j]:.3g} -> {ira[j]:.3g})"
        for j in top
    ]
    head_b, head_a = int(np.argmax(cb)), int(np.argmax(ca))
    head = (
        f"the most frequent label {names[head_a]!r} went {int(cb[head_a]):,} -> "
        f"{int(ca[head_a]):,} rows"
        if head_a == head_b
        else f"the most frequent label is now {names[head_a]!r} ({int(ca[head_a]):,} rows, was "
        f"{names[head_b]!r} with {int(cb[head_b]):,})"
    )
    why = (f"IRLbl rose most for {', '.join(parts)}; " if parts else "") + head
    return worse, why


# --- containers ----------------------------------------------------------------------------------
def take_rows(x: Any, rows: np.ndarray) -> Any:
    """Rows of *x* by integer index, keeping its container (numpy, scipy sparse, pandas, pyarrow, list)."""
    if x is None:
        return None
    if sp.issparse(x):
        return x.tocsr()[rows]
    try:
        import pandas as pd

        if isinstance(x, (pd.DataFrame, pd.Series)):
            return x.iloc[rows].reset_index(drop=True)
    except ImportError:  # pragma: no cover
        pass
    try:
        import pyarrow as pa

        if isinstance(x, (pa.Table, pa.Array, pa.ChunkedArray, pa.RecordBatch)):
            return x.take(pa.array(rows, type=pa.int64()))
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, np.ndarray):
        return x[rows]
    if isinstance(x, (list, tuple)):
        return type(x)(x[int(i)] for i in rows)
    return np.asarray(x)[rows]


def n_rows_of(x: Any) -> int:
    """Number of rows of a feature container."""
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    return len(x)


def restore_labels(like: Any, labels: LabelMatrix) -> Any:
    """Return *labels* in the container type of the caller's target *like*."""
    if isinstance(like, LabelMatrix):
        return labels
    if sp.issparse(like):
        return labels.matrix.astype(like.dtype)
    try:
        import pandas as pd

        if isinstance(like, pd.DataFrame):
            return pd.DataFrame(labels.to_dense(), columns=like.columns)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(like, np.ndarray):
        return labels.to_dense(like.dtype)
    # a list of label lists or a list of 0/1 rows
    first = like[0] if len(like) else None
    if first is not None and labels.names == tuple(str(i) for i in range(labels.n_labels)):
        arr = np.asarray(first)
        if arr.dtype != object and len(arr) == labels.n_labels and np.isin(arr, (0, 1)).all():
            return labels.to_dense().tolist()
    return labels.to_lists()


# --- the base class ------------------------------------------------------------------------------
class BaseResampler:
    """Base of every mlbalance resampler.

    Subclasses declare ``_parameter_constraints`` (name -> a constraint of
    :mod:`mlbalance._params`; ``random_state`` is always :data:`~mlbalance._params.RANDOM_STATE`), store their keyword-only parameters in ``__init__``
    and implement ``_resample(X, labels, rng) -> Resampled``. Parameters are checked here, in
    one place, at the start of every call.
    """

    _parameter_constraints: ClassVar[Mapping[str, Any]] = {}
    #: True when the method decides from the labels alone (rows are copied by index).
    index_based: ClassVar[bool] = True

    random_state: Any

    # --- parameters ---------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their values."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        rules = {
            name: RANDOM_STATE if name == "random_state" else rule
            for name, rule in self._parameter_constraints.items()
        }
        validate_params(rules, self.get_params())
        self._check_params()

    def _check_params(self) -> None:
        """Checks that involve several parameters (override when needed)."""

    def _rng(self) -> np.random.Generator:
        rs = self.random_state
        return rs if isinstance(rs, np.random.Generator) else np.random.default_rng(rs)

    # --- public API ----------------------------------------------------------------------
    def sample(self, Y: Any) -> Resampled:
        """Decide the output from the labels alone (index-based methods).

        Parameters
        ----------
        Y : LabelMatrix or anything :func:`~mlbalance.labels.as_label_matrix` takes

        Returns
        -------
        Resampled
            Output rows as indices into the input (and their labels).
        """
        if not self.index_based:
            raise ParameterError(
                f"{type(self).__name__} builds new feature vectors; call fit_resample(X, Y)"
            )
        self._validate_params()
        labels = as_label_matrix(Y)
        result = self._finish(labels, self._resample(None, labels, self._rng()))
        self._store(result)
        return result

    def fit_resample(self, X: Any, Y: Any) -> tuple[Any, Any]:
        """Resample the dataset ``(X, Y)``.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, pyarrow Table, list or None
            The rows (features, texts, or whole records). Index-based methods copy or drop
            rows of any container; MLSMOTE needs numeric features (dense or sparse).
        Y : LabelMatrix, 0/1 array, sparse matrix, DataFrame of 0/1 columns or list of label lists

        Returns
        -------
        X_res : same container as X
        Y_res : same container as Y
        """
        self._validate_params()
        labels = as_label_matrix(Y)
        if X is not None and n_rows_of(X) != labels.n_rows:
            raise InputError(
                f"X has {n_rows_of(X)} rows but Y has {labels.n_rows}; they must match"
            )
        result = self._finish(labels, self._resample(X, labels, self._rng()))
        self._store(result)
        X_res = self._features_out(X, result)
        return X_res, restore_labels(Y, result.labels)

    # --- for subclasses ------------------------------------------------------------------
    def _resample(
        self, X: Any, labels: LabelMatrix, rng: np.random.Generator
    ) -> Resampled:  # pragma: no cover - abstract
        raise NotImplementedError

    def _features_out(self, X: Any, result: Resampled) -> Any:
        return take_rows(X, result.indices)

    def _notes(self, labels: LabelMatrix, result: Resampled) -> Iterable[str]:
        """What the method did other than asked, and why (override when needed)."""
        return ()

    def _finish(self, labels: LabelMatrix, result: Resampled) -> Resampled:
        """Attach the notes and the measures made worse; warn about the latter in one line."""
        notes = tuple(self._notes(labels, result))
        worse, why = worse_imbalance(labels, result.labels)
        if worse:
            figures = ", ".join(
                f"{_MEASURE_NAMES[k]} {b:.4g} -> {a:.4g}" for k, (b, a) in worse.items()
            )
            text = f"{type(self).__name__} made the imbalance worse: {figures} ({why})"
            warnings.warn(text, UserWarning, stacklevel=3)
            notes += (text,)
        return replace(result, notes=notes, worse=worse)

    def _store(self, result: Resampled) -> None:
        self.result_ = result
        self.sample_indices_ = result.indices
        self.report_ = result.report()
