"""``mlbalance analyse --repeat-threshold T [--repeat-power P]``: label exposure under sampling.

The argparse half of :func:`mlbalance.samplers.repeat_exposure` (the library stays free of
argparse); registered through :data:`mlbalance.cli.analyse.EXTENSIONS` (numpy only; no torch).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlbalance.samplers.factors import check_repeat_parameters, repeat_exposure

__all__ = ["add_flags", "extend"]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the repeat-factor flags to ``mlbalance analyse``."""
    g = parser.add_argument_group(
        "repeat-factor sampling",
        "what RepeatFactorSampler (LVIS repeat factors) would do to label exposure per epoch",
    )
    g.add_argument(
        "--repeat-threshold", type=float, metavar="T",
        help="repeat rows whose rarest label is on fewer than a fraction T of the rows, "
        "T in (0, 1]; adds the expected epoch length and the expected positives per label "
        "and bucket before and after",
    )  # fmt: skip
    g.add_argument(
        "--repeat-power", type=float, default=0.5, metavar="P",
        help="exponent of T / f(c): 0.5 as LVIS (default), 1.0 = full inverse frequency",
    )  # fmt: skip
    g.add_argument(
        "--repeat-max", type=float, metavar="R",
        help="cap every repeat factor at R (default: no cap)",
    )  # fmt: skip


def extend(args: argparse.Namespace, labels: Any, report: dict[str, Any]) -> list[str] | None:
    """Add ``report["repeat_sampling"]`` and return its summary lines (None without the flag)."""
    t = getattr(args, "repeat_threshold", None)
    if t is None:
        return None
    power, cap = args.repeat_power, args.repeat_max
    check_repeat_parameters(t, power, cap)
    exposure = repeat_exposure(
        labels, t, power, cap, head_min=args.head_min, tail_max=args.tail_max
    )
    report["repeat_sampling"] = exposure.to_dict()
    return ["", *exposure.summary().splitlines()]
