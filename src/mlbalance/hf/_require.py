"""The optional packages of :mod:`mlbalance.hf`, imported on first use with a one-line error."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlbalance.errors import MlbalanceError

__all__ = ["require"]

#: The extra that installs every package the adapters import.
_EXTRA = "hf"


def require(module: str) -> ModuleType:
    """Import *module*, or raise one line naming the extra that installs it.

    Raises
    ------
    MlbalanceError
        ``mlbalance.hf needs 'datasets': pip install "mlbalance[hf]"``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = (exc.name or module).split(".")[0]
        raise MlbalanceError(
            f'mlbalance.hf needs {root!r}, which is not installed: pip install "mlbalance[{_EXTRA}]"'
        ) from None
