"""Checkpoints of a training run: the typed training state, saved and loaded in two calls.

A checkpoint is a folder ``CKPT/<name>/`` (``last``: written after every epoch and every
``save_steps`` optimizer steps; ``best``: the weights of the best epoch so far):

* ``model.safetensors`` — the weights;
* ``state.json`` — the :class:`TrainState` (where the run is, best so far, history);
* ``optimizer.pt`` — optimizer, scheduler, grad-scaler and RNG states (``last`` only), read
  back with ``torch.load(weights_only=True)``.

Each is written into a temporary sibling folder that then replaces the old one, so a crash
while saving leaves the previous checkpoint whole. Resuming from ``last`` reproduces an
uninterrupted run exactly: the samplers draw each epoch from ``(seed, epoch)``, the batches
already done in the epoch are skipped, and the RNG continues from the saved state.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from mlbalance.errors import ParameterError
from mlbalance.train.runtime import unwrap
from mlbalance.train.weights import WRITE_ERRORS, load_plain, load_safetensors_into, write_failure

__all__ = ["STATE", "TrainState", "load_checkpoint", "save_checkpoint"]

WEIGHTS = "model.safetensors"
STATE = "state.json"
OPTIMIZER = "optimizer.pt"


@dataclass
class TrainState:
    """Where a run is: what the loop updates and a checkpoint saves.

    Attributes
    ----------
    labels : list of str
        The label vocabulary (a resumed run must have the same).
    mode : {"text", "embedding"}
        The input kind (a resumed run must have the same).
    epoch : int
        Epochs finished.
    step : int
        Optimizer steps taken.
    batch_in_epoch : int
        Batches of the current epoch already trained (a mid-epoch checkpoint skips them).
    best_value, best_epoch : float, int
        The best validation metric so far and its epoch (1-based; -1 before any).
    bad_epochs : int
        Epochs since the last improvement (for ``patience``).
    history : list of dict
        One record per finished epoch.
    train_truncated : int
        Training rows cut at the maximum length in the first epoch.
    train_seconds, train_samples : float, int
        Time spent in training batches (evaluation excluded) and rows trained, all ranks.
    config : dict
        The run's options (for messages when a resume does not fit).
    """

    labels: list[str]
    mode: str
    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best_value: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    train_truncated: int = 0
    train_seconds: float = 0.0
    train_samples: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The ``state.json`` text."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        """Inverse of :meth:`to_json` (keys a newer version added are ignored)."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def save_checkpoint(
    folder: Path,
    name: str,
    model: torch.nn.Module,
    state: TrainState,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
) -> None:
    """Write ``folder/name`` atomically: weights, state and (if given) optimizer states.

    Raises
    ------
    MlbalanceError
        The disk is full or not writable (one line naming the file).
    """
    from safetensors.torch import save_model

    tmp = folder / f".{name}.tmp"
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_model(unwrap(model), str(tmp / WEIGHTS))
        if optimizer is not None:
            torch.save(_optimizer_states(model, optimizer, scheduler, scaler), tmp / OPTIMIZER)
        (tmp / STATE).write_text(state.to_json(), encoding="utf-8")
        _replace_dir(tmp, folder / name)
    except WRITE_ERRORS as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # this save made the folder and left nothing in it
        raise write_failure(folder / name, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _optimizer_states(model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> dict:
    extra = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    device = next(model.parameters()).device
    if device.type == "cuda":
        extra["cuda_rng"] = torch.cuda.get_rng_state(device)
    return extra


def _names_diff(old: list[str], new: list[str]) -> str:
    only_old = [n for n in old if n not in set(new)]
    only_new = [n for n in new if n not in set(old)]
    if not only_old and not only_new:
        return "same labels in a different order"
    parts = []
    for where, names in (("the checkpoint", only_old), ("the data", only_new)):
        if names:
            more = f" (+{len(names) - 5})" if len(names) > 5 else ""
            parts.append(f"only in {where}: {', '.join(names[:5])}{more}")
    return "; ".join(parts)


def read_state(path: Path) -> TrainState:
    """The :class:`TrainState` of the checkpoint folder *path*."""
    if not (path / STATE).is_file():
        raise ParameterError(
            f"resume: no checkpoint in {path.parent} (expected {path / STATE})", param="resume"
        )
    try:
        return TrainState.from_json((path / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        raise ParameterError(
            f"resume: cannot read the checkpoint {path} ({exc})", param="resume"
        ) from None


def _check_fits(path: Path, state: TrainState, labels: list[str], mode: str, data: str) -> None:
    if list(state.labels) != list(labels):
        raise ParameterError(
            f"resume: the label vocabulary of the checkpoint in {path} ({len(state.labels)} "
            f"labels) does not match the training data {data} ({len(labels)} labels): "
            f"{_names_diff(list(state.labels), list(labels))}",
            param="resume",
        )
    if state.mode != mode:
        raise ParameterError(
            f"resume: the checkpoint in {path} was trained on {state.mode} input, this data is "
            f"{mode} input",
            param="resume",
        )


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    *,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    labels: list[str],
    mode: str,
    options: dict[str, Any],
    data: str = "",
) -> TrainState:
    """Restore the checkpoint folder *path* into the model, optimizer, scheduler, scaler, RNG.

    Refuses a checkpoint of another label vocabulary, input kind or head shape (one line
    naming both sides) and a weight file that is more than tensors. *options* are this run's
    (``head_hidden``, ``standardize``), quoted when the weights do not fit.
    """
    state = read_state(path)
    _check_fits(path, state, labels, mode, data)
    try:
        load_safetensors_into(unwrap(model), path / WEIGHTS)
    except RuntimeError as exc:  # another head shape or standardisation than this run
        saved = state.config
        raise ParameterError(
            f"resume: the model in {path} does not fit this run's model options (checkpoint: "
            f"head_hidden {saved.get('head_hidden', 0)}, standardize "
            f"{saved.get('standardize', False)}; this run: head_hidden "
            f"{options.get('head_hidden')}, standardize {options.get('standardize')}): "
            f"{str(exc).splitlines()[0][:200]}",
            param=("resume", "head_hidden", "standardize"),
        ) from None
    device = next(model.parameters()).device
    extra = load_plain(path / OPTIMIZER, device)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    scaler.load_state_dict(extra["scaler"])
    torch.set_rng_state(extra["rng"].cpu())
    if "cuda_rng" in extra and device.type == "cuda":
        torch.cuda.set_rng_state(extra["cuda_rng"].cpu(), device)
    return state
