"""``ThresholdTuner``: per-label decision thresholds for any model's scores, scikit-learn style."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbalance._params import BOOL, RANDOM_STATE, Interval, Options, validate_params
from mlbalance.errors import InputError, ParameterError
from mlbalance.labels import LabelMatrix
from mlbalance.metrics import check_scores, label_csr
from mlbalance.thresholds import _crossfit
from mlbalance.thresholds._calibration import Temperature, fit_temperature
from mlbalance.thresholds._crossfit import Counts
from mlbalance.thresholds._result import ThresholdResult
from mlbalance.thresholds._rules import Rules, finish
from mlbalance.thresholds._search import search

MODES = ("f1", "recall")
FALLBACKS = ("global", "shrink", "rare")
AVERAGES = ("refit", "median", "mean")
GUARDS = ("off", "group", "label", "all")
_LOGIT_CLIP = 1e-15


@dataclass
class _Fit:
    """One run of the tuning procedure on some rows (thresholds in the raw score space)."""

    result: ThresholdResult
    own_raw: np.ndarray  # each label's own cut before the rules (NaN: none)
    global_raw: np.ndarray  # the global cut, per label (one value unless calibrated)
    calibration: Temperature | None = None


class ThresholdTuner:
    """Tune one decision threshold per label on validation scores of any model.

    ``fit(scores, Y)`` on validation (dev) scores, then ``predict(scores)`` on new scores. The
    search is exact and compiled (one pass over the scores; 500 labels x 100,000 rows in well
    under a second, see BENCHMARKS.md): per label the cut maximising its F1 (``mode="f1"``) or
    the highest cut reaching ``target_recall`` (``mode="recall"``), placed midway between two
    scores; the global cut maximises micro F1 over all labels. Labels with too few positives
    fall back, every threshold may be pulled toward the global one (``smoothing``), and a
    firing cap stops a label the model cannot rank from firing on every row (``max_rate``);
    see :mod:`mlbalance.thresholds`.

    Thresholds tuned on a small dev set over-fit it: per-label cuts can *lower* test micro F1
    against one cut. ``cv=k`` cross-fits the procedure on ``k`` stratified folds of the dev rows
    and reports its out-of-fold micro and macro F1 (:attr:`crossfit_`); ``average="mean"``
    bags the fold cuts; ``guard="group"`` keeps per-label cuts only for the frequency groups
    where they beat the global cut out of fold, and reverts labels until out-of-fold micro F1
    is not below the global cut's (Lin and Lin, CIKM 2023; :mod:`mlbalance.thresholds._crossfit`).

    Parameters
    ----------
    mode : {"f1", "recall"}, default "f1"
    target_recall : float in (0, 1], optional
        Required by ``mode="recall"``.
    min_positives : int, default 3
        Labels with fewer positives in the tuning rows fall back.
    fallback : {"global", "shrink", "rare"}, default "global"
        What a label with too few positives gets: the global cut; a blend of its own and the
        global cut with pseudo-count ``shrink``; or the median cut of the ``rare_k`` rarest
        tuned labels.
    shrink : float, default 3.0
    rare_k : int, default 10
    smoothing : float, default 0.0
        Pseudo-count ``K`` pulling every tuned threshold toward the global one,
        ``(P t_label + K t_global) / (P + K)``; 0 turns it off.
    max_rate : float or None, default 10.0
        Firing cap: each threshold is raised until its label fires on at most
        ``ceil(max_rate * max(P, 1))`` tuning rows; ``None`` turns it off.
    per_label : bool, default True
        False gives every label the global cut (on scaled scores with ``calibration``).
    cv : int >= 2, optional
        Folds of the tuning rows for the out-of-fold estimate, ``average`` and ``guard``.
    average : {"refit", "median", "mean"}, default "refit"
        With ``cv``: each label's own cut from all tuning rows (``"refit"``), or the median or
        mean of its fold cuts.
    guard : {"off", "group", "label", "all"}, default "off"
        With ``cv`` and ``mode="f1"``: give the global cut back to the labels whose own cuts
        do not beat it out of fold. ``"group"`` judges labels by frequency group (1, 2-3,
        4-7, ... positives): a group keeps its own cuts where its mean out-of-fold F1 gain is
        positive with one-sided ``confidence``. ``"label"`` judges each label alone (a Wilson
        bound on the precision of the rows where the two cuts disagree; little power for rare
        labels). ``"all"``: all labels or none. Then labels go back to the global cut until
        the out-of-fold micro F1 is within ``micro_tolerance`` of the global cut's.
    micro_tolerance : float or None, default 0.0
        How far below the global cut's out-of-fold micro F1 the guard lets the per-label cuts
        go (0.005 = half a point); ``None``: no micro F1 check. The estimate of the mix is
        optimistic (the guard chose on it): on GoEmotions with 1,000 dev rows a tolerance of
        0.005 out of fold became 1.3 points on test, 0 became 0.7 (BENCHMARKS.md).
    confidence : float in [0.5, 1), default 0.9
        The guard's one-sided confidence level (0.5: the point estimate decides).
    calibration : {None, "temperature"}, default None
        Fit a temperature per label on the tuning rows (temperature scaling) and take the
        global cut, the fallbacks and the smoothing target on scaled scores; own cuts and the
        written thresholds stay on raw scores.
    logits : bool, default False
        The scores are logits: tuned on their sigmoid, thresholds returned as logits.
    random_state : None, int or numpy Generator, default 0
        Seeds the folds.

    Attributes
    ----------
    thresholds_ : numpy.ndarray of float64, shape (labels,)
        Predict label ``c`` when ``score >= thresholds_[c]`` (in the scores' own scale).
    global_threshold_ : float
        The single cut (on scaled scores with ``calibration``; as a logit with ``logits``).
    reasons_ : list of (str or None)
        Per label, why it did not get or keep its own cut (``None`` when it did).
    result_ : ThresholdResult
        Everything above plus the reasons' kinds; ``result_.to_json`` writes thresholds.json.
    crossfit_ : dict or None
        With ``cv``: out-of-fold micro/macro F1 at 0.5, of the global cut, of the per-label cuts
        and of the cuts chosen, and the guard's decisions.
    label_names_ : tuple of str or None
        From a :class:`~mlbalance.labels.LabelMatrix` ``Y``.

    Examples
    --------
    >>> tuner = ThresholdTuner(cv=5, guard="group").fit(val_scores, val_labels)
    >>> predictions = tuner.predict(test_scores)            # 0/1, shape (rows, labels)
    >>> doc = tuner.to_json(names)                          # thresholds.json
    """

    crossfit_: dict[str, Any] | None

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012
        "mode": Options(MODES),
        "target_recall": Interval(float, 0, 1, closed="right", allow_none=True),
        "min_positives": Interval(int, 1, None),
        "fallback": Options(FALLBACKS),
        "shrink": Interval(float, 0, None),
        "rare_k": Interval(int, 1, None),
        "smoothing": Interval(float, 0, None),
        "max_rate": Interval(float, 0, None, closed="neither", allow_none=True),
        "per_label": BOOL,
        "cv": Interval(int, 2, None, allow_none=True),
        "average": Options(AVERAGES),
        "guard": Options(GUARDS),
        "micro_tolerance": Interval(float, 0, 1, allow_none=True),
        "confidence": Interval(float, 0.5, 1, closed="left"),
        "calibration": Options((None, "temperature")),
        "logits": BOOL,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self,
        *,
        mode: str = "f1",
        target_recall: float | None = None,
        min_positives: int = 3,
        fallback: str = "global",
        shrink: float = 3.0,
        rare_k: int = 10,
        smoothing: float = 0.0,
        max_rate: float | None = 10.0,
        per_label: bool = True,
        cv: int | None = None,
        average: str = "refit",
        guard: str = "off",
        micro_tolerance: float | None = 0.0,
        confidence: float = 0.9,
        calibration: str | None = None,
        logits: bool = False,
        random_state: Any = 0,
    ) -> None:
        self.mode = mode
        self.target_recall = target_recall
        self.min_positives = min_positives
        self.fallback = fallback
        self.shrink = shrink
        self.rare_k = rare_k
        self.smoothing = smoothing
        self.max_rate = max_rate
        self.per_label = per_label
        self.cv = cv
        self.average = average
        self.guard = guard
        self.micro_tolerance = micro_tolerance
        self.confidence = confidence
        self.calibration = calibration
        self.logits = logits
        self.random_state = random_state
        self._validate_params()

    # ---------------------------------------------------------------- scikit-learn protocol
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn's protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> ThresholdTuner:
        """Set constructor parameters (validated); returns self."""
        valid = set(self._param_names())
        for name in params:
            if name not in valid:
                raise ParameterError(
                    f"unknown parameter {name!r} (valid: {', '.join(sorted(valid))})", param=name
                )
        old = self.get_params()
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._validate_params()
        except ParameterError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults.get(k)]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validate_params(self) -> None:
        validate_params(self._parameter_constraints, self.get_params())
        if self.mode == "recall" and self.target_recall is None:
            raise ParameterError(
                "mode 'recall' needs target_recall in (0, 1], got None",
                param=("mode", "target_recall"),
            )
        if self.cv is None and self.average != "refit":
            raise ParameterError(
                f"average={self.average!r} takes the fold cuts, so it needs cv folds (e.g. cv=5)",
                param=("average", "cv"),
            )
        if self.guard != "off" and self.cv is None:
            raise ParameterError(
                f"guard={self.guard!r} compares cuts out of fold, so it needs cv folds (e.g. cv=5)",
                param=("guard", "cv"),
            )
        if self.guard != "off" and self.mode != "f1":
            raise ParameterError(
                f"guard={self.guard!r} compares F1 out of fold; it needs mode 'f1'",
                param=("guard", "mode"),
            )

    def _rules(self) -> Rules:
        return Rules(
            mode=self.mode,
            target_recall=None if self.target_recall is None else float(self.target_recall),
            min_positives=int(self.min_positives),
            fallback=self.fallback,
            shrink=float(self.shrink),
            max_rate=None if self.max_rate is None else float(self.max_rate),
            smoothing=float(self.smoothing),
            rare_k=int(self.rare_k),
            per_label=bool(self.per_label),
        )

    # ---------------------------------------------------------------- fit / predict
    def _scores(self, scores: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Checked scores as C-contiguous probabilities (float32 or float64)."""
        s = check_scores(scores, shape)
        if s.dtype not in (np.float32, np.float64):
            s = s.astype(np.float32 if s.dtype == np.float16 else np.float64)
        if self.logits:
            return np.ascontiguousarray(np.exp(-np.logaddexp(0.0, -s.astype(np.float64))))
        lo, hi = float(s.min()), float(s.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"scores must be probabilities in [0, 1] to tune thresholds, found values from "
                f"{lo:.4g} to {hi:.4g} (apply a sigmoid to logits first, or pass logits=True)"
            )
        return np.ascontiguousarray(s)

    def fit(self, scores: Any, Y: Any) -> ThresholdTuner:
        """Tune the thresholds on validation scores.

        Parameters
        ----------
        scores : array of float, shape (n, L)
            Probabilities in [0, 1] (logits with ``logits=True``).
        Y : LabelMatrix, scipy sparse matrix, dense 0/1 array or list of label lists
            The truth of the same rows, shape (n, L).

        Returns
        -------
        self
        """
        self._validate_params()
        self.label_names_ = tuple(Y.names) if isinstance(Y, LabelMatrix) else None
        y = label_csr(Y)
        s = self._scores(scores, y.shape)
        rows = np.arange(s.shape[0], dtype=np.int64)
        rules = self._rules()
        full = self._fit_rows(y, s, rows, rules)
        self.crossfit_ = None
        if self.cv is not None:
            full = self._crossfit(y, s, rules, full)
        result = full.result
        result.extra = {"tuner": self._params_json()}
        if self.crossfit_ is not None:
            result.extra["crossfit"] = self.crossfit_
        if full.calibration is not None:
            result.extra["calibration"] = full.calibration.to_dict()
        self.result_ = result
        self.global_thresholds_ = self._to_scale(full.global_raw)
        self.thresholds_ = self._to_scale(result.thresholds)
        self.global_threshold_ = float(
            self._to_scale(np.array([result.global_threshold]))[0]
            if full.calibration is None
            else result.global_threshold
        )
        self.positives_ = result.positives
        self.n_labels_ = int(y.shape[1])
        return self

    def _to_scale(self, thresholds: np.ndarray) -> np.ndarray:
        """Probability thresholds in the caller's score scale (logits with ``logits=True``)."""
        t = np.asarray(thresholds, dtype=np.float64)
        if not self.logits:
            return t.copy()
        p = np.clip(t, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
        return np.log(p) - np.log1p(-p)

    def _fit_rows(
        self,
        y: sp.csr_matrix,
        s: np.ndarray,
        rows: np.ndarray,
        rules: Rules,
        own_raw: np.ndarray | None = None,
    ) -> _Fit:
        """The whole procedure on *rows* (optionally with given own cuts, raw scale).

        With a calibration, each label's own cut is searched on the raw scores (scaling is
        increasing, so it separates the same rows — but scaled probabilities saturate at 1.0
        in float64 and would create ties); the global cut, the fallbacks, the smoothing and the
        firing cap work on scaled scores; a label that keeps its own cut keeps it exactly.
        """
        cuts = search(y, s, rows, rules.mode, rules.target_recall)
        found = cuts.own.copy()
        if own_raw is not None:
            cuts.own = np.where(~np.isnan(own_raw) & ~np.isnan(cuts.own), own_raw, cuts.own)
        if self.calibration is None:
            result = finish(cuts, s, rows, rules)
            return _Fit(result, found, np.full(result.thresholds.size, result.global_threshold))
        sub_y = y[rows]
        cal = fit_temperature(sub_y, s[rows])
        scaled = cal.transform(s[rows])
        local = np.arange(rows.size, dtype=np.int64)
        on_scaled = search(sub_y, scaled, local, rules.mode, rules.target_recall)
        on_scaled.own = cal.forward(cuts.own)
        result = finish(on_scaled, scaled, local, rules)
        kept = result.thresholds == on_scaled.own
        raw = cal.to_raw(result.thresholds)
        raw[kept] = cuts.own[kept]
        result.thresholds = raw
        global_raw = cal.to_raw(np.full(raw.size, result.global_threshold))
        return _Fit(result, found, global_raw, cal)

    def _crossfit(self, y: sp.csr_matrix, s: np.ndarray, rules: Rules, full: _Fit) -> _Fit:
        """Out-of-fold estimates, bagged cuts and the guard (see ``_crossfit``)."""
        k = int(self.cv)  # type: ignore[arg-type]
        if s.shape[0] < 2 * k:
            raise InputError(f"{s.shape[0]} tuning rows are too few for cv={k} folds")
        folds = _crossfit.fold_ids(y, k, self.random_state)
        positives = full.result.positives
        n_labels = positives.size
        # the folds tune on (k - 1) / k of the rows: a label tuned on all rows is tuned there too
        fold_rules = dataclasses.replace(
            rules, min_positives=max(1, rules.min_positives * (k - 1) // k)
        )
        zero = Counts(np.zeros(n_labels, np.int64), np.zeros(n_labels, np.int64))
        own, glob, half = zero, zero, zero
        fold_cuts = []
        for f in range(k):
            train = np.flatnonzero(folds != f)
            held = np.flatnonzero(folds == f)
            if train.size == 0 or held.size == 0:
                raise InputError(f"{s.shape[0]} tuning rows are too few for cv={k} folds")
            fit = self._fit_rows(y, s, train, fold_rules)
            fold_cuts.append(fit.own_raw)
            own = own + _crossfit.held_out_counts(y, s, held, fit.result.thresholds)
            glob = glob + _crossfit.held_out_counts(y, s, held, fit.global_raw)
            half = half + _crossfit.held_out_counts(y, s, held, np.full(n_labels, 0.5))
        if self.average != "refit":
            stack = np.vstack(fold_cuts)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no fold could tune
                bagged = (
                    np.nanmedian(stack, axis=0)
                    if self.average == "median"
                    else np.nanmean(stack, axis=0)
                )
            full = self._fit_rows(y, s, np.arange(s.shape[0], dtype=np.int64), rules, bagged)
        report: dict[str, Any] = {
            "folds": k,
            "estimate": f"{k}-fold cross-fit on the {s.shape[0]} tuning rows: tuned on k-1 "
            "folds, scored on the held-out fold, counts summed over folds",
            "out_of_fold": {
                "at_0.5": _crossfit.scores(half, positives),
                "global": _crossfit.scores(glob, positives),
                "per_label": _crossfit.scores(own, positives),
            },
            "average": self.average,
            "guard": self.guard,
        }
        if self.guard != "off":
            keep, decided = _crossfit.decide(
                own, glob, positives, self.guard, self.micro_tolerance, float(self.confidence)
            )
            self._apply_guard(full, keep, own, glob, positives)
            chosen = Counts(np.where(keep, own.tp, glob.tp), np.where(keep, own.pred, glob.pred))
            report["out_of_fold"]["chosen"] = _crossfit.scores(chosen, positives)
            report["out_of_fold"]["chosen_note"] = (
                "optimistic: the guard chose on these same out-of-fold counts"
            )
            report["decisions"] = decided
        self.crossfit_ = report
        return full

    def _apply_guard(
        self,
        full: _Fit,
        keep: np.ndarray,
        own: Counts,
        glob: Counts,
        positives: np.ndarray,
    ) -> None:
        """Give the global cut to the labels the guard did not keep; record why."""
        res = full.result
        f_own, f_glob = _crossfit.f1(own, positives), _crossfit.f1(glob, positives)
        for c in np.flatnonzero(~keep).tolist():
            if res.kinds.get(c) in ("no_positives", "few_positives") and self.fallback == "global":
                continue  # already on the global cut
            res.thresholds[c] = full.global_raw[c]
            res.kinds[c] = "guard"
            res.fallback[c] = (
                f"guard ({self.guard}): out of fold its own cut scored F1 {f_own[c]:.3f} "
                f"({own.pred[c]} predictions) vs {f_glob[c]:.3f} ({glob.pred[c]}) for the "
                f"global cut ({self.cv}-fold cross-fit): global threshold"
            )

    def predict(self, scores: Any) -> np.ndarray:
        """0/1 predictions (uint8), ``scores >= thresholds_``, shape (rows, labels)."""
        self._check_fitted()
        s = check_scores(scores)
        if s.shape[1] != self.thresholds_.size:
            raise InputError(
                f"scores have {s.shape[1]} label columns but the tuner has "
                f"{self.thresholds_.size} thresholds"
            )
        return (s >= self.thresholds_).astype(np.uint8)

    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_"):
            raise ParameterError(
                "this ThresholdTuner is not fitted yet; call fit(scores, Y) or from_json first"
            )

    @property
    def reasons_(self) -> list[str | None]:
        """Per label, why it did not get or keep its own cut (``None`` when it did)."""
        self._check_fitted()
        return self.result_.reasons

    # ---------------------------------------------------------------- thresholds.json
    def _params_json(self) -> dict[str, Any]:
        params = self.get_params()
        rs = params["random_state"]
        params["random_state"] = rs if rs is None or isinstance(rs, int) else repr(rs)
        params["scale"] = "logit" if self.logits else "probability"
        return params

    def to_json(self, names: Any = None) -> dict[str, Any]:
        """The ``thresholds.json`` document (label names from ``Y``, *names*, or "0", "1", ...).

        Thresholds are in the scores' scale (logits with ``logits=True``).
        """
        self._check_fitted()
        if names is None:
            names = self.label_names_ or [str(i) for i in range(self.thresholds_.size)]
        doc = self.result_.to_json(list(names))
        doc["thresholds"] = [float(t) for t in self.thresholds_]
        doc["global_threshold"] = float(self.global_threshold_)
        return doc

    @classmethod
    def from_json(cls, data: dict[str, Any] | str, names: Any = None) -> ThresholdTuner:
        """A fitted tuner from ``thresholds.json`` (this tuner's, or the trainer's v1 file).

        Parameters
        ----------
        data : dict or str
        names : sequence of str, optional
            Re-order the thresholds to these labels (all must be in the file).
        """
        from mlbalance.thresholds._serial import tuner_from_json

        return tuner_from_json(cls, data, names)
