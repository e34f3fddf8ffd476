"""The process runtime of training and inference: device, process group, ranks, autocast.

The one owner of "where does this process run and who are its peers", as detectron2's
``utils/comm.py``: everything else asks a :class:`Runtime` (rank, world size, device,
barrier, reductions, gathering rows) instead of reading ``RANK`` or calling
``torch.distributed`` itself. A single process is a :class:`Runtime` with ``world == 1``,
where every collective is a no-op, so callers never branch on "am I distributed".

Under ``torchrun`` the process group is joined with NCCL on GPU and gloo on CPU
(:func:`start_runtime`); :meth:`Runtime.close` leaves it only when this module created it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from mlbalance.errors import ParameterError

__all__ = [
    "Runtime",
    "autocast",
    "autocast_dtype",
    "compile_for_training",
    "process_rank",
    "resolve_device",
    "running",
    "start_runtime",
    "unwrap",
    "uses_cuda_graphs",
]


def process_rank() -> int:
    """This process's rank under ``torchrun`` (``RANK``), 0 for a single process."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the local CUDA device when there is one (``LOCAL_RANK``), else CPU.

    Raises
    ------
    ParameterError
        An unknown device name, or CUDA asked for where there is none (names ``device``).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ParameterError(f"device: unknown device {name!r}", param="device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device {name}: CUDA is not available on this machine", param="device"
        )
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of *precision* on *device* (None = full float32).

    ``auto`` is bf16 on a GPU that supports it, else fp16, and float32 on CPU.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ParameterError(
            "precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)", param="precision"
        )
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on *device* with *dtype*, or a no-op context for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compile_for_training(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """*model* under ``torch.compile`` in *mode* (``off``: *model* itself).

    ``reduce-overhead`` records CUDA graphs: on an H200 an eager step of all-MiniLM-L6-v2
    spends ~20 ms of host time launching ~650 kernels for ~2.5 ms of GPU work
    (BENCHMARKS.md), and a graph replay launches them at once. Shapes change with the batch
    width, so batches are padded to a multiple of 16 (:func:`~mlbalance.train.build.
    pad_multiple`): each new width compiles (the second one with dynamic shapes) or records
    a graph once. A graph that fails to compile falls back to eager execution
    (``torch._dynamo.config.suppress_errors``) instead of ending the run.
    """
    if mode == "off":
        return model
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    compiled = torch.compile(model) if mode == "default" else torch.compile(model, mode=mode)
    return cast(torch.nn.Module, compiled)


def uses_cuda_graphs(mode: str, device: torch.device) -> bool:
    """True when the compiled model replays CUDA graphs (then each step is marked)."""
    return device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or *model* itself)."""
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, torch.nn.Module) else model


@dataclass
class Runtime:
    """Rank, world size and device of this process, and the collectives the trainer uses.

    Every collective is a no-op (or the identity) when ``world == 1``. Each one is a
    host-device synchronisation point on GPU; the training loop calls them only between
    epochs or in evaluation, never per batch.
    """

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that logs and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.world > 1:
            torch.distributed.barrier()

    def min_int(self, value: int) -> int:
        """The smallest *value* over the ranks (a sync)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return int(t.item())

    def sum_int(self, value: int) -> int:
        """The sum of *value* over the ranks (a sync)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], device=self.device)
        torch.distributed.all_reduce(t)
        return int(t.item())

    def mean_float(self, value: float) -> float:
        """The mean of *value* over the ranks (a sync)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def broadcast_(self, tensors: list[torch.Tensor], src: int = 0) -> None:
        """Overwrite *tensors* on every rank with rank *src*'s values (in place; a sync)."""
        if self.world == 1:
            return
        for t in tensors:
            torch.distributed.broadcast(t, src=src)

    def my_rows(self, n_rows: int) -> np.ndarray:
        """The rows this rank scores in evaluation: ``rank, rank + world, ...``."""
        return np.arange(self.rank, n_rows, self.world)

    def gather_rows(self, local: torch.Tensor, n_rows: int) -> np.ndarray:
        """Reassemble the rows each rank scored (:meth:`my_rows`) into one float32 array.

        Every rank gets the full ``(n_rows, width)`` array, in row order.
        """
        if self.world == 1:
            return local.float().cpu().numpy()
        width = local.shape[1]
        longest = -(-n_rows // self.world)
        padded = torch.zeros((longest, width), dtype=torch.float32, device=self.device)
        padded[: len(local)] = local.to(self.device, torch.float32)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(parts, padded)
        full = np.empty((n_rows, width), dtype=np.float32)
        for r, part in enumerate(parts):
            size = len(range(r, n_rows, self.world))
            full[r :: self.world] = part[:size].cpu().numpy()
        return full

    def close(self) -> None:
        """Leave the process group if :func:`start_runtime` joined it."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def start_runtime(device_name: str = "auto") -> Runtime:
    """This process's :class:`Runtime`: join the group ``torchrun`` set up, if any.

    ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` come from ``torchrun``; without them this is one
    process. On GPU each rank takes ``cuda:LOCAL_RANK`` unless *device_name* names an index.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = process_rank()
    device = resolve_device(device_name)
    if device.type == "cuda" and world > 1 and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Runtime(rank=rank, world=world, device=device, owns_group=owns)


@contextlib.contextmanager
def running(device_name: str = "auto") -> Iterator[Runtime]:
    """:func:`start_runtime` as a context: the group is left however the block ends."""
    rt = start_runtime(device_name)
    try:
        yield rt
    finally:
        rt.close()
