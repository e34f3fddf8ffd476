"""Commands that need the optional ``train`` extras (torch, transformers, ...) say so in one line.

A core install (``pip install mlbalance``) has no torch; ``mlbalance train`` there should not
end in a ``ModuleNotFoundError`` traceback but name the install that fixes it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

from mlbalance.errors import MlbalanceError

__all__ = ["TRAIN_MODULES", "needs_train_extras"]

#: The modules of ``pip install "mlbalance[train]"``.
TRAIN_MODULES = ("torch", "transformers", "tokenizers", "safetensors")


def _message(command: str, module: str) -> str:
    return (
        f"mlbalance {command} needs the optional training packages, and {module!r} is not "
        f'installed: pip install "mlbalance[train]"'
    )


@contextlib.contextmanager
def needs_train_extras(command: str, modules: tuple[str, ...] = TRAIN_MODULES) -> Iterator[None]:
    """Check *modules* are installed before the block, and name the install if one is missing.

    A ``ModuleNotFoundError`` for one of them inside the block (a lazy import deep in the
    library) becomes the same one-line :class:`~mlbalance.errors.MlbalanceError`.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MlbalanceError(_message(command, module))
    try:
        yield
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root in TRAIN_MODULES:
            raise MlbalanceError(_message(command, root)) from None
        raise
