"""Weight files, safely: safetensors, or ``torch.load(weights_only=True)``; one-line failures.

Every tensor file the trainer writes or reads goes through here, so that

* nothing is ever unpickled with code execution: a pickle whose payload is more than tensors
  and plain containers (a ``__reduce__`` that calls ``os.system``, say) is refused, with the
  reason and without the hint to re-run with ``weights_only=False`` that torch adds;
* a full disk or a broken file ends in one line naming the file
  (:class:`~mlbalance.errors.MlbalanceError`), not a ``SafetensorError`` traceback.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mlbalance.errors import InputError, MlbalanceError

__all__ = [
    "LOAD_ERRORS",
    "WRITE_ERRORS",
    "load_plain",
    "load_safetensors_into",
    "read_failure",
    "write_failure",
    "writing",
]


def _safetensor_error() -> type[Exception]:
    try:
        from safetensors import SafetensorError

        return SafetensorError
    except ImportError:  # pragma: no cover - older safetensors
        return RuntimeError


SafetensorError = _safetensor_error()
#: What a failed write raises: the OS (full disk, permissions) or safetensors' own error.
WRITE_ERRORS: tuple[type[Exception], ...] = (OSError, SafetensorError)
#: What reading a broken or hostile weight file raises.
LOAD_ERRORS: tuple[type[Exception], ...] = (pickle.UnpicklingError, SafetensorError, EOFError)


def _first_line(exc: BaseException) -> str:
    """The informative line of *exc*; for torch's refusal, what it refused, without its advice
    to load with ``weights_only=False``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, pickle.UnpicklingError):
        noise = ("weights_only", "Weights only load failed", "Check the documentation")
        lines = [line for line in lines if not any(n in line for n in noise)] or ["refused"]
    return (lines or [type(exc).__name__])[0][:200]


def write_failure(path: str | Path, exc: BaseException) -> MlbalanceError:
    """The one-line error of a failed write of *path* (full disk, no permission, ...)."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
    return MlbalanceError(f"cannot write {path}: {reason}")


def read_failure(path: str | Path, exc: BaseException) -> InputError:
    """The one-line error of a weight file that cannot or must not be loaded."""
    if isinstance(exc, pickle.UnpicklingError):
        return InputError(
            f"{path}: refused to load: it holds more than tensors ({_first_line(exc)}); "
            "mlbalance loads weights only as safetensors or weights-only pickles and never "
            "runs code from a file"
        )
    return InputError(f"{path}: not a readable weight file ({_first_line(exc)})")


def writing(path: str | Path, write: Callable[[], Any]) -> Any:
    """Run *write* (which writes *path*); turn a failure into :func:`write_failure`."""
    try:
        return write()
    except WRITE_ERRORS as exc:
        raise write_failure(path, exc) from None


def load_plain(path: str | Path, device: torch.device | str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers, nothing else."""
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol before refusing
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except LOAD_ERRORS as exc:
        raise read_failure(path, exc) from None
    except (RuntimeError, ValueError) as exc:
        raise read_failure(path, exc) from None


def load_safetensors_into(model: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors file into *model* (its current device); shape errors pass through."""
    from safetensors.torch import load_model

    device = next(model.parameters()).device
    try:
        load_model(model, str(path), device=str(device))
    except LOAD_ERRORS as exc:
        raise read_failure(path, exc) from None
