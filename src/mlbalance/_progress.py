"""Progress bars: tqdm on a terminal, silent otherwise (logs, CI, pipes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    """True when stderr is a terminal and ``MLBALANCE_NO_PROGRESS`` is unset."""
    if os.environ.get("MLBALANCE_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T],
    *,
    desc: str = "",
    total: int | None = None,
    unit: str = "it",
    enabled: bool | None = None,
    **kwargs: Any,
) -> Iterator[T]:
    """Wrap *iterable* in a tqdm bar when progress is enabled, else return it unchanged."""
    if enabled is None:
        enabled = progress_enabled()
    if not enabled:
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, **kwargs))


def progress_bar(
    *,
    desc: str = "",
    total: int | None = None,
    unit: str = "it",
    enabled: bool | None = None,
    **kwargs: Any,
) -> Any:
    """A manual tqdm bar (``.update(n)``, ``.set_postfix()``, ``.close()``), inert when disabled."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = progress_enabled()
    return tqdm(desc=desc, total=total, unit=unit, leave=False, disable=not enabled, **kwargs)
