"""From the cuts found to the thresholds used: fallbacks, smoothing and the firing cap.

Labels with too few positives
    A label with fewer than ``min_positives`` positives (including none) cannot be tuned
    reliably — with none, F1 is 0 at every cut and "maximising" it would give a threshold that
    never or always fires. It falls back: ``"global"`` to the global cut; ``"shrink"`` to
    ``(P t_label + k t_global) / (P + k)`` with ``k = shrink`` (a label with no positives gets
    ``t_global``); ``"rare"`` to the median threshold of the ``rare_k`` tuned labels with the
    fewest positives (the global cut is tuned for micro F1, i.e. for the frequent labels; a
    label too rare to tune scores on the scale of the rarest labels that could be tuned).

Smoothing
    ``smoothing=K > 0`` pulls every tuned threshold toward the global one by the same
    pseudo-count rule, ``t = (P t_label + K t_global) / (P + K)`` — the shrinkage estimator of
    empirical Bayes applied to thresholds: a label with many positives keeps nearly its own
    cut, one with a few (whose F1-best cut is noisy) moves most of the way.

The firing cap
    Every threshold is raised (never lowered) until its label fires on at most
    ``ceil(max_rate * max(P, 1))`` tuning rows. A label the model cannot rank (its few
    positives score below most negatives) otherwise gets an "F1-best" cut near 0 that fires on
    almost every row (F1 0.003 beats 0). A label with skill is untouched: firing on more than
    10x its positives caps its F1 at 2/11.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlbalance.thresholds import _kernels
from mlbalance.thresholds._result import ThresholdResult
from mlbalance.thresholds._search import EPS, Cuts


@dataclass(frozen=True)
class Rules:
    """The settings :func:`finish` applies (the tuner's parameters of the same names)."""

    mode: str = "f1"
    target_recall: float | None = None
    min_positives: int = 3
    fallback: str = "global"
    shrink: float = 3.0
    max_rate: float | None = 10.0
    smoothing: float = 0.0
    rare_k: int = 10
    per_label: bool = True


def blend(own: float, global_t: float, n_pos: int, pseudo_count: float) -> float:
    """``(P own + k global) / (P + k)`` with ``P = n_pos >= 1``, clipped into (0, 1)."""
    w = n_pos / (n_pos + pseudo_count)
    return float(np.clip(w * own + (1.0 - w) * global_t, EPS, 1.0 - EPS))


def _cap(
    thresholds: np.ndarray,
    labels: np.ndarray,
    allowed: np.ndarray,
    s: np.ndarray,
    rows: np.ndarray,
) -> dict[int, tuple[float, int, int]]:
    """Raise the thresholds of *labels* firing on more than ``ceil(allowed)`` rows.

    Returns ``{label: (new threshold, rows it fired on before, cap)}`` for the labels raised.
    """
    if labels.size == 0:
        return {}
    probe = np.full(thresholds.size, np.inf)
    probe[labels] = thresholds[labels]
    fired = _kernels.count_at_least(s, rows, probe)
    raised: dict[int, tuple[float, int, int]] = {}
    for c, a in zip(labels.tolist(), allowed.tolist()):
        k = int(np.ceil(a))
        if k >= rows.size or fired[c] <= k:
            continue
        col = s[rows, c]
        top_k, top_k1 = np.partition(col, [col.size - k - 1, col.size - k])[
            [col.size - k, col.size - k - 1]
        ]
        if top_k <= thresholds[c]:  # ties at the threshold: nothing to raise
            continue
        guard = float(np.clip(0.5 * (float(top_k) + float(top_k1)), EPS, 1.0 - EPS))
        if guard > thresholds[c]:
            thresholds[c] = guard
            raised[c] = (guard, int(fired[c]), k)
    return raised


def finish(cuts: Cuts, s: np.ndarray, rows: np.ndarray, rules: Rules) -> ThresholdResult:
    """The thresholds, with a reason for every label that did not get its own cut."""
    positives, global_t = cuts.positives, cuts.global_threshold
    n_labels = positives.size
    thresholds = np.full(n_labels, global_t)
    reasons: dict[int, str] = {}
    kinds: dict[int, str] = {}
    has_own = ~np.isnan(cuts.own)
    tuned_mask = (positives >= rules.min_positives) & has_own & rules.per_label
    tuned = np.flatnonzero(tuned_mask)
    for c in tuned.tolist():
        thresholds[c] = blend(float(cuts.own[c]), global_t, int(positives[c]), rules.smoothing)
    if rules.max_rate is not None:
        what = "F1-best" if rules.mode == "f1" else "target-recall"
        raised = _cap(thresholds, tuned, rules.max_rate * positives[tuned], s, rows)
        for c, (t, fired, k) in raised.items():
            kinds[c] = "firing_cap"
            reasons[c] = (
                f"firing cap: its {what} threshold fired on over {k} validation rows ({fired} "
                f"rows, {fired / positives[c]:.0f}x its {positives[c]} positives): raised to "
                f"{t:.4g} so it fires on at most {k} validation rows"
            )
    rare_t = global_t
    if rules.fallback == "rare" and tuned.size:
        rarest = sorted(tuned.tolist(), key=lambda c: (int(positives[c]), c))[: rules.rare_k]
        rare_t = float(np.median(thresholds[rarest]))
    rest = np.flatnonzero(~tuned_mask)
    for c in rest.tolist():
        n_pos = int(positives[c])
        kinds[c] = "no_positives" if n_pos == 0 else "few_positives"
        few = (
            f"{n_pos} positive(s) in validation, too few to tune "
            f"(< min_positives={rules.min_positives})"
        )
        if not rules.per_label:
            kinds[c] = "few_positives"
            reasons[c] = "per_label=False: global threshold"
        elif rules.fallback == "rare":
            thresholds[c] = rare_t
            reasons[c] = (
                f"{few}: median threshold of the {min(rules.rare_k, tuned.size)} rarest tuned "
                "labels"
                if tuned.size
                else f"{few}: global threshold (no tuned label)"
            )
        elif n_pos == 0:
            reasons[c] = "no positives in validation: global threshold"
        elif rules.fallback == "global":
            reasons[c] = f"{few}: global threshold"
        else:
            w = n_pos / (n_pos + rules.shrink)
            thresholds[c] = blend(float(cuts.own[c]), global_t, n_pos, rules.shrink)
            reasons[c] = f"{few}: shrunk toward the global threshold (weight {w:.2f} on its own)"
    if rules.max_rate is not None:
        allowed = rules.max_rate * np.maximum(positives[rest], 1)
        for c, (t, _fired, k) in _cap(thresholds, rest, allowed, s, rows).items():
            reasons[c] += f"; raised to {t:.4g} so it fires on at most {k} validation rows"
    return ThresholdResult(
        thresholds=thresholds,
        fallback=reasons,
        global_threshold=global_t,
        positives=positives,
        mode=rules.mode,
        target_recall=rules.target_recall,
        min_positives=int(rules.min_positives),
        strategy=rules.fallback,
        shrink=float(rules.shrink),
        smoothing=float(rules.smoothing),
        kinds=kinds,
    )
