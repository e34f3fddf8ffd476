"""``ThresholdResult``: tuned thresholds, why each label got its own, and ``thresholds.json``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbalance.errors import InputError, ParameterError

FORMAT = "mlbalance-thresholds"
#: Version 2 added ``fallback_kind``, ``tuner`` and ``crossfit``; version 1 files still read.
VERSION = 2

#: Why a label did not get its own tuned threshold (``ThresholdResult.kinds``).
KIND_TEXT = {
    "no_positives": "without positives to tune on",
    "few_positives": "with too few positives to tune on",
    "firing_cap": "capped by the firing cap (their tuned cut fired on over max_rate x their "
    "positives)",
    "guard": "kept on the global cut by the cross-fitted guard",
}


@dataclass
class ThresholdResult:
    """Tuned thresholds and how each was chosen.

    Attributes
    ----------
    thresholds : numpy.ndarray of float64, shape (labels,)
        Predict label ``c`` when ``score >= thresholds[c]``.
    fallback : dict of int to str
        Label index -> why it did not get (or keep) its own tuned threshold, in words.
    global_threshold : float
        The single threshold the fallback uses.
    positives : numpy.ndarray of int64
        Validation positives per label.
    mode, target_recall, min_positives, strategy, shrink, smoothing
        The tuning settings (``strategy`` is the ``fallback`` argument).
    kinds : dict of int to str
        Label index -> the reason's kind: ``"no_positives"``, ``"few_positives"``,
        ``"firing_cap"`` or ``"guard"`` (see :data:`KIND_TEXT`).
    extra : dict
        More JSON-ready facts for ``thresholds.json`` (the tuner's settings, the cross-fitted
        estimates and the guard's decisions).
    """

    thresholds: np.ndarray
    fallback: dict[int, str] = field(default_factory=dict)
    global_threshold: float = 0.5
    positives: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mode: str = "f1"
    target_recall: float | None = None
    min_positives: int = 3
    strategy: str = "global"
    shrink: float = 3.0
    smoothing: float = 0.0
    kinds: dict[int, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str | None]:
        """Per label, why it did not get its own tuned threshold (``None`` when it did)."""
        return [self.fallback.get(c) for c in range(self.thresholds.size)]

    def apply(self, scores: Any) -> np.ndarray:
        """Boolean predictions ``scores >= thresholds``, shape (rows, labels)."""
        from mlbalance.thresholds import apply_thresholds

        return apply_thresholds(scores, self.thresholds)

    def summary(self) -> str:
        """One line: how many labels fell back, by kind, e.g. for a trainer's log.

        ``"12 of 90 labels did not get their own threshold: 7 too few positives to tune on,
        5 firing cap (...)"``; ``"all 90 labels got their own threshold"`` when none fell back.
        """
        n = self.thresholds.size
        if not self.fallback:
            return f"all {n} labels got their own threshold"
        counts = Counter(self.kinds.get(c, "few_positives") for c in self.fallback)
        parts = [f"{k} {KIND_TEXT.get(kind, kind)}" for kind, k in counts.most_common()]
        return f"{len(self.fallback)} of {n} labels did not get their own threshold: " + ", ".join(
            parts
        )

    def to_json(self, names: Sequence[str]) -> dict[str, Any]:
        """A JSON-able dict keyed by label name (what ``thresholds.json`` holds)."""
        names = [str(n) for n in names]
        if len(names) != self.thresholds.size:
            raise ParameterError(
                f"{len(names)} label names given for {self.thresholds.size} thresholds",
                param="names",
            )
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "rule": "score >= threshold",
            "mode": self.mode,
            "target_recall": self.target_recall,
            "min_positives": int(self.min_positives),
            "fallback_strategy": self.strategy,
            "shrink": float(self.shrink),
            "smoothing": float(self.smoothing),
            "global_threshold": float(self.global_threshold),
            "labels": names,
            "thresholds": [float(t) for t in self.thresholds],
            "val_positives": [int(p) for p in self.positives] if self.positives.size else None,
            "fallback": {names[i]: reason for i, reason in sorted(self.fallback.items())},
            "fallback_kind": {names[i]: kind for i, kind in sorted(self.kinds.items())},
        }
        doc.update(self.extra)
        return doc

    @classmethod
    def from_json(
        cls, data: dict[str, Any] | str, names: Sequence[str] | None = None
    ) -> ThresholdResult:
        """Read :meth:`to_json` output (a dict or a JSON string; versions 1 and 2).

        Parameters
        ----------
        data : dict or str
        names : sequence of str, optional
            The label order wanted (e.g. the model's ``id2label``); thresholds are re-ordered to
            it. Every name must be in the file.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"thresholds: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"thresholds: not a {FORMAT} document")
        try:
            file_names = [str(n) for n in data["labels"]]
            values = np.asarray(data["thresholds"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"thresholds: missing or malformed field ({exc})") from None
        if values.shape != (len(file_names),) or not np.isfinite(values).all():
            raise InputError(
                f"thresholds: {values.size} finite values expected for {len(file_names)} labels"
            )
        positives = np.asarray(data.get("val_positives") or [], dtype=np.int64)
        index = {n: i for i, n in enumerate(file_names)}
        order = np.arange(len(file_names))
        if names is not None:
            missing = [str(n) for n in names if str(n) not in index]
            if missing:
                raise InputError(
                    f"thresholds: no threshold for label(s) {missing[:5]} ({len(missing)} missing)"
                )
            order = np.array([index[str(n)] for n in names], dtype=np.int64)
        new_pos = {int(j): i for i, j in enumerate(order)}

        def by_label(key: str) -> dict[int, str]:
            return {
                new_pos[index[n]]: str(v)
                for n, v in (data.get(key) or {}).items()
                if n in index and index[n] in new_pos
            }

        fallback = by_label("fallback")
        kinds = by_label("fallback_kind") or {c: _kind_of(r) for c, r in fallback.items()}
        extra: dict[str, Any] = {k: data[k] for k in ("tuner", "crossfit") if k in data}
        return cls(
            thresholds=values[order],
            fallback=fallback,
            global_threshold=float(data.get("global_threshold", 0.5)),
            positives=positives[order]
            if positives.size == len(file_names)
            else np.zeros(0, np.int64),
            mode=str(data.get("mode", "f1")),
            target_recall=data.get("target_recall"),
            min_positives=int(data.get("min_positives", 3)),
            strategy=str(data.get("fallback_strategy", "global")),
            smoothing=float(data.get("smoothing", 0.0)),
            shrink=float(data.get("shrink", 3.0)),
            kinds=kinds,
            extra=extra,
        )


def _kind_of(reason: str) -> str:
    """The kind of a version-1 reason string (those files stored the words only)."""
    if reason.startswith("no positives"):
        return "no_positives"
    if "F1-best threshold fired on over" in reason:
        return "firing_cap"
    return "few_positives"
