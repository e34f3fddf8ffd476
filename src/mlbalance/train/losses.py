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
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlbalance.errors import ParameterError
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


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------
class MultilabelLoss(nn.Module):
    """Base of the losses: input checks, dtype promotion and the mean reduction.

    Subclasses implement :meth:`elementwise`, the loss per (row, label) element.
    """

    name: ClassVar[str] = ""
    uses_counts: ClassVar[bool] = False

    def __init__(self, n_labels: int | None = None) -> None:
        super().__init__()
        self.n_labels = n_labels

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean of :meth:`elementwise` over batch and labels (a scalar)."""
        logits, targets = self._prepare(logits, targets)
        return self.elementwise(logits, targets).mean()

    def _prepare(
        self, logits: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if logits.shape != targets.shape or logits.dim() != 2:
            raise ParameterError(
                f"{self.name} loss: logits {tuple(logits.shape)} and targets "
                f"{tuple(targets.shape)} must both be (batch, labels)"
            )
        if self.n_labels is not None and logits.shape[1] != self.n_labels:
            raise ParameterError(
                f"{self.name} loss was built for {self.n_labels} labels, got logits with "
                f"{logits.shape[1]}"
            )
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        return logits, targets.to(logits.dtype)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss per element, shape (batch, labels)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The loss name and its parameters (for logs, ``metrics.json``, reproducibility)."""
        names = [
            p
            for p in inspect.signature(type(self).__init__).parameters
            if p not in ("self", "n_labels", "label_counts", "n_rows")
        ]
        return {"loss": self.name, **{p: getattr(self, p) for p in names}}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "loss")

    def _buffer(self, name: str, like: torch.Tensor) -> torch.Tensor:
        buf: torch.Tensor = getattr(self, name)
        return buf.to(device=like.device, dtype=like.dtype)


def _pow_from_nll(nll: torch.Tensor, gamma: float) -> torch.Tensor | float:
    """``p ** gamma`` from ``-log p`` (a softplus): ``exp(-gamma * nll)``; 1 for gamma 0.

    Finite value and gradient everywhere, for any gamma >= 0 (``p ** gamma`` itself has an
    infinite derivative at p = 0 when gamma < 1).
    """
    if gamma == 0:
        return 1.0
    return torch.exp(-gamma * nll)


# --------------------------------------------------------------------------------------------
# the losses
# --------------------------------------------------------------------------------------------
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


class FocalLoss(MultilabelLoss):
    """Focal loss, Lin et al. (2017), "Focal Loss for Dense Object Detection", ICCV.

    ``l = -alpha_t (1 - p_t) ** gamma log p_t`` with ``p_t = s(z)`` for a positive and
    ``1 - s(z)`` for a negative, ``alpha_t = alpha`` for a positive and ``1 - alpha`` for a
    negative. Written as ``y alpha e^{-gamma softplus(z)} softplus(-z) +
    (1 - y)(1 - alpha) e^{-gamma softplus(-z)} softplus(z)``.

    Parameters
    ----------
    gamma : float, default 2.0
        The focusing parameter (paper: 2).
    alpha : float or None, default 0.25
        The positive-class balance (paper: 0.25 with gamma 2). ``None`` drops the alpha factor
        (then gamma 0 is exactly BCE).
    """

    name = "focal"

    def __init__(
        self, n_labels: int | None = None, *, gamma: float = 2.0, alpha: float | None = 0.25
    ) -> None:
        super().__init__(n_labels)
        if gamma < 0:
            raise ParameterError(f"focal gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ParameterError(f"focal alpha must be in [0, 1], got {alpha}")
        self.gamma, self.alpha = float(gamma), alpha

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nll_pos = F.softplus(-logits)  # -log p
        nll_neg = F.softplus(logits)  # -log(1 - p)
        # (1 - p) ** gamma = exp(-gamma * nll_neg), p ** gamma = exp(-gamma * nll_pos)
        pos = targets * (_pow_from_nll(nll_neg, self.gamma) * nll_pos)
        neg = (1.0 - targets) * (_pow_from_nll(nll_pos, self.gamma) * nll_neg)
        if self.alpha is None:
            return pos + neg
        return self.alpha * pos + (1.0 - self.alpha) * neg


class AsymmetricLoss(MultilabelLoss):
    """Asymmetric loss (ASL), Ridnik et al. (2021), "Asymmetric Loss For Multi-Label
    Classification", ICCV.

    ``L+ = (1 - p) ** gamma_pos * log p``,
    ``L- = p_m ** gamma_neg * log(1 - p_m)`` with the shifted probability
    ``p_m = max(p - clip, 0)``, and ``l = -y L+ - (1 - y) L-``. ``log p = -softplus(-z)``;
    ``log(1 - p_m) = log(min(s(-z) + clip, 1))`` (argument >= clip, so finite), or
    ``-softplus(z)`` when ``clip`` is 0.

    Defaults are the paper's: ``gamma_neg=4``, ``gamma_pos=0``, ``clip=0.05`` (the authors' code
    also ships ``gamma_pos=1``). Deviations: the authors' code sums the loss (we average, see the
    module docstring). Their training script also detaches the focusing weights
    (``(1-p)**gamma_pos``, ``p_m**gamma_neg``) from the graph
    (``disable_torch_grad_focal_loss=True``); by default we keep the full gradient of the loss
    as written in the paper, and ``detach_focal=True`` reproduces their script.

    Parameters
    ----------
    gamma_neg, gamma_pos : float
        Focusing exponents of the negative and positive terms.
    clip : float
        Probability margin ``m`` of the negative term, in [0, 1).
    detach_focal : bool, default False
        Treat the focusing weights as constants in the backward pass.
    """

    name = "asl"

    def __init__(
        self,
        n_labels: int | None = None,
        *,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        detach_focal: bool = False,
    ) -> None:
        super().__init__(n_labels)
        self.detach_focal = bool(detach_focal)
        if gamma_neg < 0 or gamma_pos < 0:
            raise ParameterError(
                f"asl gammas must be >= 0, got gamma_neg={gamma_neg}, gamma_pos={gamma_pos}"
            )
        if not 0.0 <= clip < 1.0:
            raise ParameterError(f"asl clip must be in [0, 1), got {clip}")
        self.gamma_neg, self.gamma_pos, self.clip = float(gamma_neg), float(gamma_pos), float(clip)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pos = F.softplus(-logits)  # -log p
        if self.gamma_pos:
            w_pos = _pow_from_nll(F.softplus(logits), self.gamma_pos)  # (1 - p) ** gamma_pos
            pos = self._maybe_detach(w_pos) * pos
        if self.clip > 0:
            one_minus_pm = (torch.sigmoid(-logits) + self.clip).clamp(max=1.0)
            neg = -torch.log(one_minus_pm)  # argument >= clip: finite
            if self.gamma_neg:
                p_m = 1.0 - one_minus_pm  # max(p - clip, 0), in [0, 1 - clip]
                if self.gamma_neg >= 1:
                    weight = p_m**self.gamma_neg  # finite derivative at p_m = 0
                else:
                    # p_m ** gamma has an infinite derivative at 0 when gamma < 1
                    tiny = torch.finfo(logits.dtype).tiny
                    weight = torch.where(
                        p_m > 0, p_m.clamp(min=tiny) ** self.gamma_neg, torch.zeros_like(p_m)
                    )
                neg = self._maybe_detach(weight) * neg
        else:
            neg = F.softplus(logits)
            if self.gamma_neg:
                neg = self._maybe_detach(_pow_from_nll(F.softplus(-logits), self.gamma_neg)) * neg
        return targets * pos + (1.0 - targets) * neg

    def _maybe_detach(self, weight: Any) -> Any:
        return weight.detach() if self.detach_focal and isinstance(weight, torch.Tensor) else weight


class DistributionBalancedLoss(MultilabelLoss):
    """Distribution-balanced loss, Wu et al. (2020), "Distribution-Balanced Loss for Multi-Label
    Classification in Long-Tailed Datasets", ECCV.

    Re-balanced weighting. With ``n_c`` training rows of label ``c``, the expected sampling
    probability of an instance under class-aware sampling is ``P^I_i ∝ sum_{c in y_i} 1/n_c``
    and of the class ``P^C_c ∝ 1/n_c``; ``r_ic = P^C_c / P^I_i`` and the smoothed weight is
    ``r̂_ic = alpha + sigmoid(beta (r_ic - mu))``, applied to every label of the row.

    Negative-tolerant regularisation (NTR). Logits are shifted by a class-specific bias from
    the label prior ``p_c = n_c / N``, ``b̂_c = log(p_c / (1 - p_c))``:
    ``z' = z + kappa b̂_c / lambda``, and the negative term is scaled by ``lambda``::

        l = r̂ [ y softplus(-z') + (1 - y) / lambda * softplus(lambda z') ]

    optionally with the focal factor ``(1 - p_t) ** gamma`` on the NTR logits (the authors'
    released DB configuration, "DB-Focal", uses ``gamma=2``).

    Defaults are those of the authors' released COCO-MLT configuration
    (``wutong16/DistributionBalancedLoss``, ``configs/coco/LT_resnet50_pfc_DB.py``):
    ``alpha=0.1, beta=10, mu=0.2, kappa=0.05, lambda=2, gamma=2``. Deviations: the paper writes the
    bias as ``nu = kappa b̂``; the authors' code, whose results the paper reports, divides it by
    ``lambda`` — we follow the code. The code also multiplies the DB-Focal loss by a constant
    ``balance_param=2``; we leave it out (``scale=1``) so loss values stay comparable with BCE
    (it only rescales gradients). The shift lives only in the loss: predictions use the raw
    logits, which for rare labels therefore come out raised (as in logit adjustment). A row
    without positives has ``P^I = 0``; the code's limit
    ``r -> inf`` gives ``r̂ = alpha + 1``, which we use explicitly. Counts of 0 are treated as 1.

    Parameters
    ----------
    label_counts, n_rows
        Training rows per label and training rows.
    alpha, beta, mu : float
        The smoothing function of ``r``.
    kappa : float
        Scale of the prior bias in NTR.
    lam : float
        ``lambda`` of NTR, > 0 (the name ``lambda`` is reserved in Python; :func:`build_loss`
        accepts ``lambda``, ``lam`` or ``lambda_``).
    gamma : float
        Focal exponent on the regularised logits; 0 gives the plain DB loss.
    scale : float, default 1.0
        A constant factor (the authors' ``balance_param``).
    """

    name = "db"
    uses_counts = True

    def __init__(
        self,
        *,
        label_counts: Any,
        n_rows: int,
        alpha: float = 0.1,
        beta: float = 10.0,
        mu: float = 0.2,
        kappa: float = 0.05,
        lam: float = 2.0,
        gamma: float = 2.0,
        scale: float = 1.0,
    ) -> None:
        counts, n = check_counts(label_counts, n_rows)
        super().__init__(int(counts.size))
        if lam <= 0:
            raise ParameterError(f"db lambda must be > 0, got {lam}")
        if gamma < 0:
            raise ParameterError(f"db gamma must be >= 0, got {gamma}")
        self.alpha, self.beta, self.mu = float(alpha), float(beta), float(mu)
        self.kappa, self.lam, self.gamma, self.scale = (
            float(kappa),
            float(lam),
            float(gamma),
            float(scale),
        )
        n_c = np.clip(counts, 1.0, None)
        self.register_buffer("freq_inv", torch.as_tensor(1.0 / n_c, dtype=torch.float64))
        self.register_buffer(
            "logit_shift",
            torch.as_tensor(self.kappa * prior_log_odds(counts, n) / self.lam, dtype=torch.float64),
        )

    def rebalance_weight(self, targets: torch.Tensor) -> torch.Tensor:
        """``r̂`` of each element, shape (batch, labels)."""
        freq_inv = self._buffer("freq_inv", targets)
        inst = (targets * freq_inv).sum(dim=1, keepdim=True)  # P^I up to the common 1/C
        r = freq_inv / inst.clamp(min=torch.finfo(targets.dtype).tiny)
        w = self.alpha + torch.sigmoid(self.beta * (r - self.mu))
        return torch.where(inst > 0, w, torch.full_like(w, self.alpha + 1.0))

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits + self._buffer("logit_shift", logits)
        lz = self.lam * z
        pos = F.softplus(-z)
        neg = F.softplus(lz) / self.lam
        if self.gamma:
            # focal factor on the NTR logits: (1 - p_t) ** gamma with p_t of the scaled logit
            pos = _pow_from_nll(F.softplus(z), self.gamma) * pos
            neg = _pow_from_nll(F.softplus(-lz), self.gamma) * neg
        loss = targets * pos + (1.0 - targets) * neg
        return self.scale * self.rebalance_weight(targets).detach() * loss


class LogitAdjustedLoss(MultilabelLoss):
    """Logit-adjusted BCE, after Menon et al. (2021), "Long-tail learning via logit adjustment",
    ICLR.

    Each label's logit is shifted by ``tau`` times its log prior odds **inside the loss**, during
    training only::

        l = BCE(z + tau * b_c, y),    b_c = log(p_c / (1 - p_c)),  p_c = n_c / N

    (:func:`prior_log_odds`). Predictions use the raw logit ``z``. With ``tau = 1`` the loss is
    minimised by ``z = logit P(y_c = 1 | x) - b_c``, so ``z >= 0`` (score ``>= 0.5``) exactly
    when ``P(y_c = 1 | x) / p_c >= P(y_c = 0 | x) / (1 - p_c)``: the decision that minimises
    the label's *balanced* error (the mean of its false-negative and false-positive rates)
    rather than its plain error. A rare label is no longer outvoted by its prior at 0.5.

    Multilabel form. The paper adjusts a softmax over mutually exclusive classes,
    ``-log softmax(f(x) + tau log pi)_y``. Here every label is its own binary problem (as in
    BCE): the two classes "label present" and "label absent" with priors ``p_c`` and
    ``1 - p_c`` and logits ``(z, 0)``; the paper's loss on those two classes is exactly the
    formula above, so this is the paper's loss, label by label. Deviations: (1) balance is
    between a label's positives and negatives, not across labels (labels are not exclusive,
    so there is no joint class prior to adjust); (2) ``p_c`` comes from the training counts
    given to :func:`build_loss`; with a sampler that changes label frequencies the shift
    still uses the original priors (the paper assumes plain sampling); (3) counts of 0 are
    treated as 1 and ``p_c`` is clipped (see :func:`prior_log_odds`), so a frequency ratio of
    1 to 10^6 between labels gives shifts of at most ~28 in magnitude and the gradient stays
    ``sigmoid(z + tau b_c) - y``, in (-1, 1) per element, whatever the priors.

    The 0.5 cut of this loss maximises balanced accuracy, which for rare labels means high
    recall and low precision; thresholds tuned on validation (what ``mlbalance train`` does)
    choose the operating point. ``tau = 0`` is plain BCE. Post-hoc logit adjustment (the
    paper's other variant: subtract ``tau b_c`` from a BCE model's logits) is a per-label
    threshold ``sigmoid(tau b_c)`` and is covered by tuned thresholds.

    Do not combine with the trainer's ``--prior-bias``: that initialises the head bias to
    ``b_c``, which the loss already adds, so the adjusted logit would start at ``2 b_c``.
    With the bias at 0 the adjusted logit starts at ``tau b_c`` — the prior-bias start.

    Parameters
    ----------
    label_counts, n_rows
        Training rows per label and training rows.
    tau : float, default 1.0
        Scale of the adjustment, >= 0 (the paper's default and its best value on most sets).
    """

    name = "logit-adjusted"
    uses_counts = True

    def __init__(self, *, label_counts: Any, n_rows: int, tau: float = 1.0) -> None:
        counts, n = check_counts(label_counts, n_rows)
        super().__init__(int(counts.size))
        try:
            tau = float(tau)
        except (TypeError, ValueError):
            raise ParameterError(f"logit-adjusted tau must be a number, got {tau!r}") from None
        if not (math.isfinite(tau) and tau >= 0):
            raise ParameterError(f"logit-adjusted tau must be finite and >= 0, got {tau}")
        self.tau = tau
        shift = tau * prior_log_odds(counts, n)
        self.register_buffer("logit_shift", torch.as_tensor(shift, dtype=torch.float64))

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits + self._buffer("logit_shift", logits)
        return F.binary_cross_entropy_with_logits(z, targets, reduction="none")

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, targets = self._prepare(logits, targets)
        z = logits + self._buffer("logit_shift", logits)
        return F.binary_cross_entropy_with_logits(z, targets)


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
