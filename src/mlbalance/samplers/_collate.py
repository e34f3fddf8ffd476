"""Batches of the row dicts :class:`~mlbalance.samplers.RepeatFactorIterableDataset` yields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["collate_rows"]


def collate_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch the row dicts of :class:`RepeatFactorIterableDataset` (a DataLoader ``collate_fn``).

    For each key: tensors (the multi-hot labels) are stacked, ``(B, n_labels)`` float32;
    numbers become a tensor (``bool``, ``int64`` or ``float32``); lists of numbers of one
    length (an embedding) a ``(B, dim)`` float32 tensor; anything else (text, values with
    nulls) a list. ``DataLoader(ds, batch_size=32, collate_fn=collate_rows)``.
    """
    if not rows:
        return {}
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        first = values[0]
        if isinstance(first, torch.Tensor):
            out[key] = torch.stack(values)
        elif all(isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.bool)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.int64)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.float32)
        elif _equal_number_lists(values):
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = values
    return out


def _equal_number_lists(values: list[Any]) -> bool:
    if not all(isinstance(v, list) for v in values) or not values[0]:
        return False
    n = len(values[0])
    return all(
        len(v) == n and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for v in values
    )
