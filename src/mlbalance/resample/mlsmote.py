"""MLSMOTE: synthetic minority rows for multilabel data.

Charte, F., Rivera, A. J., del Jesus, M. J. and Herrera, F. (2015). "MLSMOTE: Approaching
imbalanced multilabel learning through synthetic instance generation". *Knowledge-Based
Systems* 89, 385-397. doi:10.1016/j.knosys.2015.07.019
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from mlbalance.errors import InputError
from mlbalance.labels import LabelMatrix
from mlbalance.resample.base import (
    BaseResampler,
    Interval,
    Options,
    Resampled,
    irlbl_and_mean_ir,
)

__all__ = ["MLSMOTE", "check_features"]


def check_features(X: Any, *, name: str = "X") -> np.ndarray | sp.csr_matrix:
    """Numeric, finite, 2-D features (dense array or CSR); raise :class:`InputError` otherwise."""
    if X is None:
        raise InputError(f"MLSMOTE needs numeric features; {name} is None")
    if sp.issparse(X):
        csr = sp.csr_matrix(X)
        if not (np.issubdtype(csr.dtype, np.number) or csr.dtype == bool):
            raise InputError(f"{name} must be numeric, got dtype {csr.dtype}")
        if csr.dtype.kind != "f":
            csr = csr.astype(np.float64)
        if csr.nnz and not np.isfinite(csr.data).all():
            bad = np.flatnonzero(~np.isfinite(csr.data))[0]
            row = int(np.searchsorted(csr.indptr, bad, side="right") - 1)
            raise InputError(f"{name}: row {row} has a non-finite value ({csr.data[bad]})")
        return csr
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    try:
        arr = np.asarray(X)
    except ValueError as exc:
        raise InputError(
            f"{name} must be a 2-D numeric array (rows of equal length): {exc}"
        ) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows x features), got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise InputError(f"{name}: row {r}, feature {c} is {arr[r, c]} (features must be finite)")
    return arr


class MLSMOTE(BaseResampler):
    """Multilabel SMOTE (Charte et al. 2015).

    For each minority label (IRLbl > MeanIR), every row that has the label is a seed. Its
    ``k_neighbors`` nearest neighbours are searched **within that label's bag** (Euclidean,
    scikit-learn ``NearestNeighbors``; dense or sparse features). One of them, drawn at random,
    is the reference: each numeric feature of the synthetic row is
    ``seed + u * (reference - seed)`` with ``u ~ U(0, 1)`` drawn per feature, so the new row
    lies between the seed and the reference (toward the neighbour, not away from it). Its
    labels come from the seed and its neighbours:

    * ``"ranking"`` (default): a label is kept when at least half of the seed plus neighbours
      have it (``count >= (k + 1) / 2``);
    * ``"union"``: every label of the seed or a neighbour;
    * ``"intersection"``: only labels shared by the seed and all neighbours.

    Parameters
    ----------
    k_neighbors : int, default 5
    label_generation : {"ranking", "union", "intersection"}, default "ranking"
    random_state : int, numpy.random.Generator or None

    Attributes
    ----------
    source_rows_, neighbour_rows_ : numpy.ndarray of int64
        Seed and reference neighbour (input rows) of each synthetic row, in output order.
    minority_labels_ : numpy.ndarray of int64
        The labels processed (minority when their turn came).
    small_bags_ : dict[str, int]
        Labels whose bag had fewer than ``k_neighbors + 1`` rows, with their bag size.

    Notes
    -----
    Follows the paper's pseudo-code: MeanIR computed once on the input; labels visited in
    order, each label's IRLbl recomputed on the growing dataset (synthetic rows count); the
    interpolation drawn per feature; the ranking rule as stated above. Deviations:

    * Seeds and neighbours are input rows only; synthetic rows made for an earlier label never
      seed or serve as neighbours for a later one, so each synthetic row traces back to two real
      rows (``source_rows_``, ``neighbour_rows_``).
    * Only numeric features (the paper also handles nominal ones with the value distance
      metric); text is embedded first (:mod:`mlbalance.embed`).
    * A bag with fewer than ``k + 1`` rows uses the neighbours it has (with a warning); a bag of
      one row produces nothing. Labels for ``"ranking"`` then use ``(k_eff + 1) / 2``.

    The well-known MLSMOTE gist computes ``seed - gap * (neighbour - seed)`` (extrapolating
    away from the neighbour) and fits a single neighbour model on all minority rows; both are
    avoided here.
    """

    index_based: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "k_neighbors": Interval(int, 1, None),
        "label_generation": Options(("ranking", "union", "intersection")),
        "random_state": None,
    }

    def __init__(
        self,
        *,
        k_neighbors: int = 5,
        label_generation: str = "ranking",
        random_state: Any = None,
    ) -> None:
        self.k_neighbors = k_neighbors
        self.label_generation = label_generation
        self.random_state = random_state

    def _resample(self, X: Any, labels: LabelMatrix, rng: np.random.Generator) -> Resampled:
        feats = check_features(X)
        n = labels.n_rows
        counts = labels.counts().astype(np.int64)
        _, target = irlbl_and_mean_ir(counts)
        top = int(counts.max()) if counts.size else 0  # IRLbl's numerator, kept up to date
        csc = labels.matrix.tocsc()
        ymat = labels.matrix
        k = int(self.k_neighbors)
        seeds: list[np.ndarray] = []
        refs: list[np.ndarray] = []
        new_feats: list[Any] = []
        new_labels: list[sp.csr_matrix] = []
        processed: list[int] = []
        small: dict[str, int] = {}
        for lab in range(labels.n_labels):
            # IRLbl of lab on the growing dataset (measures.irlbl_of_counts, one label)
            if counts[lab] == 0 or top / counts[lab] <= target:
                continue
            bag = csc.indices[csc.indptr[lab] : csc.indptr[lab + 1]].astype(np.int64)
            processed.append(lab)
            if len(bag) < k + 1:
                small[labels.names[lab]] = len(bag)
            if len(bag) < 2:
                continue
            k_eff = min(k, len(bag) - 1)
            nbr = _bag_neighbours(feats[bag], k_eff)  # (bag, k_eff) positions within the bag
            pick = rng.integers(0, k_eff, size=len(bag))
            ref_pos = nbr[np.arange(len(bag)), pick]
            seed_rows, ref_rows = bag, bag[ref_pos]
            new_feats.append(_interpolate(feats, seed_rows, ref_rows, rng))
            # labels from the seed and its k_eff neighbours
            group = np.concatenate([np.arange(len(bag))[:, None], nbr], axis=1)
            g = sp.csr_matrix(
                (
                    np.ones(group.size, dtype=np.int32),
                    group.ravel(),
                    np.arange(0, group.size + 1, k_eff + 1),
                ),
                shape=(len(bag), len(bag)),
            )
            votes = (g @ ymat[bag].astype(np.int32)).tocsr()
            need = {"ranking": (k_eff + 1) / 2.0, "union": 1, "intersection": k_eff + 1}[
                self.label_generation
            ]
            votes.data = (votes.data >= need).astype(np.uint8)
            votes.eliminate_zeros()
            lab_new = votes.astype(np.uint8)
            new_labels.append(lab_new)
            counts += np.bincount(lab_new.indices, minlength=labels.n_labels)
            if lab_new.nnz:
                top = max(top, int(counts[lab_new.indices].max()))
            seeds.append(seed_rows)
            refs.append(ref_rows)
        self.minority_labels_ = np.asarray(processed, dtype=np.int64)
        self.small_bags_ = small
        self.mean_ir_ = target
        if small:
            few = dict(list(small.items())[:5])
            warnings.warn(
                f"{len(small)} minority label(s) have fewer than k+1={k + 1} rows; using the "
                f"neighbours there are (bag sizes: {few}); a bag of one row adds nothing",
                stacklevel=3,
            )
        src = np.concatenate(seeds) if seeds else np.zeros(0, dtype=np.int64)
        ref = np.concatenate(refs) if refs else np.zeros(0, dtype=np.int64)
        self.source_rows_ = src
        self.neighbour_rows_ = ref
        if new_feats:
            self.synthetic_features_ = (
                sp.vstack(new_feats, format="csr") if sp.issparse(feats) else np.vstack(new_feats)
            )
            syn_labels = sp.vstack(new_labels, format="csr").astype(np.uint8)
        else:
            self.synthetic_features_ = (
                sp.csr_matrix((0, feats.shape[1]), dtype=feats.dtype)
                if sp.issparse(feats)
                else np.zeros((0, feats.shape[1]), dtype=feats.dtype)
            )
            syn_labels = sp.csr_matrix((0, labels.n_labels), dtype=np.uint8)
        out_labels = LabelMatrix(
            _sorted(sp.vstack([ymat, syn_labels], format="csr").astype(np.uint8)), labels.names
        )
        idx = np.concatenate([np.arange(n, dtype=np.int64), src])
        synthetic = np.zeros(len(idx), dtype=bool)
        synthetic[n:] = True
        neighbour = np.full(len(idx), -1, dtype=np.int64)
        neighbour[n:] = ref
        self._features = feats
        # synthetic rows are new rows (counted as synthetic), not relabelled copies
        return Resampled(idx, out_labels, n, synthetic=synthetic, neighbour=neighbour)

    def _features_out(self, X: Any, result: Resampled) -> Any:
        feats = self._features
        del self._features
        if sp.issparse(feats):
            return sp.vstack([feats, self.synthetic_features_], format="csr")
        return np.vstack([feats, self.synthetic_features_])


def _sorted(m: sp.csr_matrix) -> sp.csr_matrix:
    m.sort_indices()
    return m


_SMALL_BAG = 2048


def _bag_neighbours(xb: Any, k_eff: int) -> np.ndarray:
    """The ``k_eff`` nearest other rows of each bag row (Euclidean), as positions in the bag.

    Small bags: exact brute force in numpy (each row's own distance forced first, so it is
    dropped even among duplicates); larger bags: scikit-learn ``NearestNeighbors``.
    """
    n = xb.shape[0]
    if n <= _SMALL_BAG:
        dense = xb.toarray() if sp.issparse(xb) else xb
        dense = np.asarray(dense, dtype=np.float64)
        sq = np.einsum("ij,ij->i", dense, dense)
        d = sq[:, None] - 2.0 * (dense @ dense.T) + sq[None, :]
        np.fill_diagonal(d, -np.inf)
        part = np.argpartition(d, k_eff, axis=1)[:, : k_eff + 1]
        rows = np.arange(n)[:, None]
        order = np.lexsort((part, d[rows, part]), axis=1)
        nbr = part[rows, order]
        return nbr[:, 1:]
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k_eff + 1).fit(xb)
    return _drop_self(nn.kneighbors(xb, return_distance=False), k_eff)


def _drop_self(nbr: np.ndarray, k_eff: int) -> np.ndarray:
    """Remove each row's own position from its neighbour list (duplicates may hide it)."""
    own = np.arange(nbr.shape[0])[:, None]
    is_self = nbr == own
    has_self = is_self.any(axis=1)
    # rows where self is missing (exact duplicates ranked first): drop the last neighbour
    is_self[~has_self, -1] = True
    out = nbr[~is_self].reshape(nbr.shape[0], k_eff)
    return out


def _interpolate(feats: Any, seeds: np.ndarray, refs: np.ndarray, rng: np.random.Generator) -> Any:
    """``seed + u * (ref - seed)``, one ``u ~ U(0, 1)`` per feature (dense) or per stored value."""
    if sp.issparse(feats):
        a = feats[seeds]
        diff = (feats[refs] - a).tocsr()
        diff.data = diff.data * rng.random(diff.nnz).astype(diff.dtype)
        out = (a + diff).tocsr()
        out.eliminate_zeros()
        return out
    a = feats[seeds]
    diff = feats[refs] - a
    u = rng.random(diff.shape, dtype=np.float32 if feats.dtype == np.float32 else np.float64)
    return (a + u * diff).astype(feats.dtype, copy=False)
