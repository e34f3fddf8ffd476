"""The ``mlbalance`` command line: a thin layer over the library.

Each command lives in its own module ``mlbalance.cli.<name>`` exposing
``register(subparsers)`` (adds the sub-parser, sets ``func``). :func:`main` turns
:class:`~mlbalance.errors.MlbalanceError` into ``mlbalance: error: <message>`` and exit
code 2, and prints warnings as ``mlbalance: warning: <message>``; ``MLBALANCE_DEBUG=1`` shows
the full traceback and Python's warning format instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from mlbalance._version import __version__
from mlbalance.errors import MlbalanceError

# Order is the order of `mlbalance --help`. Each name is a module in this package.
COMMANDS: tuple[str, ...] = (
    "synth",
    "analyse",
    "split",
    "embed",
    "resample",
    "verify",
    "prepare",
    "train",
    "evaluate",
    "predict",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="mlbalance",
        description="Analyse, split, resample and train on imbalanced multilabel datasets.",
    )
    parser.add_argument("--version", action="version", version=f"mlbalance {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mlbalance.cli.{name}").register(sub)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Print a warning as one line, ``mlbalance: warning: <message>`` (no source location)."""
    print(f"mlbalance: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlbalance`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = os.environ.get("MLBALANCE_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():  # restores the caller's warning display afterwards
            if not debug:
                warnings.showwarning = _show_warning
            code = args.func(args)
    except MlbalanceError as exc:
        if debug:
            raise
        print(f"mlbalance: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlbalance: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:
        if debug:
            raise
        print(f"mlbalance: error: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
