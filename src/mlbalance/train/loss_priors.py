"""Losses built from the training label priors: distribution-balanced (Wu et al. 2020) and
logit-adjusted (Menon et al. 2021).

Both shift each label's logit inside the loss by a multiple of its log prior odds (the shift
is training-only: predictions use the raw logits); DB also re-weights elements by the
expected sampling frequency of their row. Conventions: :mod:`mlbalance.train.losses`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mlbalance.errors import ParameterError
from mlbalance.train.loss_base import MultilabelLoss, pow_from_nll
from mlbalance.train.loss_weights import check_counts, prior_log_odds

__all__ = ["DistributionBalancedLoss", "LogitAdjustedLoss"]


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
            pos = pow_from_nll(F.softplus(z), self.gamma) * pos
            neg = pow_from_nll(F.softplus(-lz), self.gamma) * neg
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
