"""``mlbalance analyse --repeat-threshold T [--repeat-power P]``: label exposure under sampling.

The argparse half of :func:`mlbalance.samplers.repeat_exposure` (the library stays free of
argparse); registered through :data:`mlbalance.cli.analyse.EXTENSIONS` (numpy only; no torch).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlbalance._params import validate_params
from mlbalance.samplers.exposure import repeat_exposure
from mlbalance.samplers.factors import REPEAT_CONSTRAINTS

__all__ = ["add_flags", "extend"]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the repeat-factor flags to ``mlbalance analyse``."""
    g = parser.add_argument_group(
        "repeat-factor sampling",
        "what RepeatFactorSampler (LVIS repeat factors) would do to label exposure per epoch",
    )
    g.add_argument(
        "--repeat-threshold", type=_threshold, metavar="T",
        help="repeat rows whose rarest label is on fewer than a fraction T of the rows, "
        "T in (0, 1], or 'auto' (T chosen so that an epoch grows 1.5x); adds the expected "
        "epoch length and the expected positives per label and bucket before and after",
    )  # fmt: skip
    g.add_argument(
        "--repeat-power", type=float, default=0.5, metavar="P",
        help="exponent of T / f(c): 0.5 as LVIS (default), 1.0 = full inverse frequency",
    )  # fmt: skip
    g.add_argument(
        "--repeat-max", type=float, metavar="R",
        help="cap every repeat factor at R (default: no cap)",
    )  # fmt: skip


def _threshold(text: str) -> float | str:
    """``auto`` or a number (checked against the declared constraints later)."""
    return "auto" if text.strip().lower() == "auto" else float(text)


def extend(args: argparse.Namespace, labels: Any, report: dict[str, Any]) -> list[str] | None:
    """Add ``report["repeat_sampling"]`` and return its summary lines (None without the flag)."""
    t = getattr(args, "repeat_threshold", None)
    if t is None:
        return None
    power, cap = args.repeat_power, args.repeat_max
    # the library's constraints under this command's names, so errors name the flags typed
    flags = {"threshold": "repeat_threshold", "power": "repeat_power", "max_repeat": "repeat_max"}
    validate_params(
        {flags[k]: rule for k, rule in REPEAT_CONSTRAINTS.items()},
        {"repeat_threshold": t, "repeat_power": power, "repeat_max": cap},
    )
    exposure = repeat_exposure(
        labels, t, power, cap, head_min=args.head_min, tail_max=args.tail_max
    )
    report["repeat_sampling"] = exposure.to_dict()
    return ["", *exposure.summary().splitlines()]
