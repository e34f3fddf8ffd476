"""Focusing losses: focal (Lin et al. 2017) and asymmetric (Ridnik et al. 2021).

Both down-weight easy elements with a factor ``p ** gamma``; ASL treats the positive and the
negative terms apart and shifts the negatives' probability. Conventions (mean reduction,
stable forms): :mod:`mlbalance.train.losses`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mlbalance.errors import ParameterError
from mlbalance.train.loss_base import MultilabelLoss, pow_from_nll

__all__ = ["AsymmetricLoss", "FocalLoss"]


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
        pos = targets * (pow_from_nll(nll_neg, self.gamma) * nll_pos)
        neg = (1.0 - targets) * (pow_from_nll(nll_pos, self.gamma) * nll_neg)
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
            w_pos = pow_from_nll(F.softplus(logits), self.gamma_pos)  # (1 - p) ** gamma_pos
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
                neg = self._maybe_detach(pow_from_nll(F.softplus(-logits), self.gamma_neg)) * neg
        return targets * pos + (1.0 - targets) * neg

    def _maybe_detach(self, weight: Any) -> Any:
        return weight.detach() if self.detach_focal and isinstance(weight, torch.Tensor) else weight
