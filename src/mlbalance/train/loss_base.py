"""The base of the multilabel losses: input checks, dtype promotion, the mean reduction.

Every loss of :mod:`mlbalance.train.losses` subclasses :class:`MultilabelLoss` and implements
only :meth:`MultilabelLoss.elementwise`; the conventions (mean over batch and labels,
``logsigmoid``/``softplus`` forms, float32 inside the loss) are stated in that module.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import nn

from mlbalance.errors import ParameterError

__all__ = ["MultilabelLoss", "pow_from_nll"]


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


def pow_from_nll(nll: torch.Tensor, gamma: float) -> torch.Tensor | float:
    """``p ** gamma`` from ``-log p`` (a softplus): ``exp(-gamma * nll)``; 1 for gamma 0.

    Finite value and gradient everywhere, for any gamma >= 0 (``p ** gamma`` itself has an
    infinite derivative at p = 0 when gamma < 1).
    """
    if gamma == 0:
        return 1.0
    return torch.exp(-gamma * nll)
