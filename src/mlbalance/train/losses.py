"""Imbalance-aware multilabel losses on logits, each written from its paper.

Every loss is a :class:`torch.nn.Module` whose ``forward(logits, targets)`` takes logits and 0/1
float targets of shape ``(batch, labels)`` and returns a scalar.

Normalisation (all losses)
    The per-element losses ``l[i, c]`` are averaged over the batch **and** the labels,
    ``loss = sum_ic l[i, c] / (batch * labels)`` — the convention of
    :class:`torch.nn.BCEWithLogitsLoss` (``reduction="mean"``) — so the scales of the losses are
    comparable and do not change with the batch size. (The ASL reference code sums instead;
    the distribution-balanced code averages like this.)

Numerical stability
    Every log-probability is written with ``logsigmoid``/``softplus`` (never
    ``log(sigmoid(x))``); modulating factors ``p**gamma`` are ``exp(-gamma * softplus(-x))``.
    Logits from -100 to 100 and weights up to 1e6 give finite values and gradients.
    Half-precision logits (autocast) are promoted to float32 inside the loss.

Names (:data:`LOSSES`, the one list of loss names; :data:`LOSS_CLASSES` maps each to its
class): ``bce``, ``weighted-bce``, ``focal``, ``asl``, ``db``, ``logit-adjusted``. Build one with
:func:`build_loss`, which gives the losses that need them the training label counts.

Where they live: the base class in :mod:`mlbalance.train.loss_base`; BCE and weighted BCE,
the registry and :func:`build_loss` here; focal and ASL in :mod:`mlbalance.train.loss_focusing`;
distribution-balanced and logit-adjusted in :mod:`mlbalance.train.loss_priors`; positive
weights and prior log-odds in :mod:`mlbalance.train.loss_weights`. All are re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import torch
import torch.nn.functional as F

from mlbalance.errors import ParameterError
from mlbalance.train.loss_base import MultilabelLoss
from mlbalance.train.loss_focusing import AsymmetricLoss, FocalLoss
from mlbalance.train.loss_priors import DistributionBalancedLoss, LogitAdjustedLoss
from mlbalance.train.loss_weights import SCHEMES, check_counts, pos_weights, prior_log_odds

__all__ = [
    "LOSSES",
    "LOSS_CLASSES",
    "SCHEMES",
    "AsymmetricLoss",
    "BCELoss",
    "DistributionBalancedLoss",
    "FocalLoss",
    "LogitAdjustedLoss",
    "MultilabelLoss",
    "WeightedBCELoss",
    "build_loss",
    "pos_weights",
    "prior_log_odds",
]


class BCELoss(MultilabelLoss):
    """Binary cross-entropy on logits (the plain baseline).

    ``l = -[y log s(z) + (1 - y) log(1 - s(z))] = y softplus(-z) + (1 - y) softplus(z)``;
    identical to :class:`torch.nn.BCEWithLogitsLoss` with ``reduction="mean"``.
    """

    name = "bce"

    def __init__(self, n_labels: int | None = None) -> None:
        super().__init__(n_labels)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # the fused kernel with its own mean: same value, one kernel less
        logits, targets = self._prepare(logits, targets)
        return F.binary_cross_entropy_with_logits(logits, targets)


class WeightedBCELoss(MultilabelLoss):
    """BCE with a weight on each label's positive term, from training counts.

    ``l = w_c y softplus(-z) + (1 - y) softplus(z)``, ``w`` from :func:`pos_weights`
    (``scheme``, ``max_weight``, ``beta``); with the ``inverse`` scheme and no clip this is the
    usual ``BCEWithLogitsLoss(pos_weight=neg/pos)``.

    Parameters
    ----------
    label_counts, n_rows
        Training rows per label and training rows.
    scheme : str, default "sqrt-inverse"
    max_weight : float, optional
    beta : float, default 0.999
        For ``effective-number`` (Cui et al. 2019).
    """

    name = "weighted-bce"
    uses_counts = True

    def __init__(
        self,
        *,
        label_counts: Any,
        n_rows: int,
        scheme: str = "sqrt-inverse",
        max_weight: float | None = None,
        beta: float = 0.999,
    ) -> None:
        w = pos_weights(label_counts, n_rows, scheme, max_weight=max_weight, beta=beta)
        super().__init__(int(w.size))
        self.scheme, self.max_weight, self.beta = scheme, max_weight, beta
        self.register_buffer("pos_weight", torch.as_tensor(w, dtype=torch.float64))

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self._buffer("pos_weight", logits)
        return w * targets * F.softplus(-logits) + (1.0 - targets) * F.softplus(logits)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # torch's fused kernel computes the same stable form (log-sum-exp), in one op
        logits, targets = self._prepare(logits, targets)
        return F.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self._buffer("pos_weight", logits)
        )


#: The loss registry: name -> class. :func:`build_loss` builds from it and :data:`LOSSES` lists
#: its names, so a loss added here is known everywhere (``--loss`` choices included).
LOSS_CLASSES: dict[str, type[MultilabelLoss]] = {
    cls.name: cls
    for cls in (
        BCELoss,
        WeightedBCELoss,
        FocalLoss,
        AsymmetricLoss,
        DistributionBalancedLoss,
        LogitAdjustedLoss,
    )
}

#: The loss names, in registry order: the single source of ``--loss``'s choices.
LOSSES: tuple[str, ...] = tuple(LOSS_CLASSES)

_ALIASES = {"lambda": "lam", "lambda_": "lam", "neg_scale": "lam", "init_bias": "kappa"}


def _coerce(key: str, value: Any) -> Any:
    """A command-line string to the float (or None) that a numeric parameter expects."""
    if not isinstance(value, str) or key == "scheme":
        return value
    text = value.strip().lower()
    if text in ("true", "yes", "on"):
        return True
    if text in ("false", "no", "off"):
        return False
    if text in ("none", "null", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"loss parameter {key}={value!r} is not a number") from None


def build_loss(name: str, *, label_counts: Any, n_rows: int, **params: Any) -> MultilabelLoss:
    """Build a loss by name.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`: ``bce``, ``weighted-bce``, ``focal``, ``asl``, ``db``,
        ``logit-adjusted`` (underscores accepted for hyphens).
    label_counts : array of int, shape (labels,)
        Training rows per label (``LabelMatrix.counts()`` of the training data, after any
        resampling that the model will see).
    n_rows : int
        Training rows.
    **params
        The loss's own parameters (see each class); pass only those you set. Strings from a
        command line (``"4"``, ``"0.05"``, ``"none"``, ``"true"``) are converted to float,
        ``None`` or bool (``scheme`` stays a string). For ``db``, ``lambda`` may be given as
        ``lambda``/``lam``.

    Returns
    -------
    MultilabelLoss
        A module whose ``forward(logits, targets)`` returns the mean loss.

    Raises
    ------
    ParameterError
        Unknown loss name or parameter, or a parameter out of range.
    """
    key = str(name).strip().lower().replace("_", "-")
    cls = LOSS_CLASSES.get(key)
    if cls is None:
        raise ParameterError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    counts, n = check_counts(label_counts, n_rows)
    kwargs = {(_ALIASES.get(k, k) if key == "db" else k): _coerce(k, v) for k, v in params.items()}
    accepted = {
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_labels")
    } - {"label_counts", "n_rows"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ParameterError(
            f"loss {key!r} does not take parameter(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(accepted)) or 'none'}"
        )
    factory = cast(Any, cls)
    try:
        if cls.uses_counts:
            return cast(MultilabelLoss, factory(label_counts=counts, n_rows=n, **kwargs))
        return cast(MultilabelLoss, factory(int(counts.size), **kwargs))
    except TypeError as exc:  # a wrongly typed value
        raise ParameterError(f"loss {key!r}: {exc}") from None
