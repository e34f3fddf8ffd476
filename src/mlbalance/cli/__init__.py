"""The ``mlbalance`` command line: a thin layer over the library.

Each command lives in its own module ``mlbalance.cli.<name>`` exposing
``register(subparsers)`` (adds the sub-parser, sets ``func``). :func:`main` turns
:class:`~mlbalance.errors.MlbalanceError` into ``mlbalance: error: <message>`` and exit
code 2, and prints warnings as ``mlbalance: warning: <message>``; ``MLBALANCE_DEBUG=1`` shows
the full traceback and Python's warning format instead. A reader that closes the pipe early
(``mlbalance analyse ... | head``) ends the command quietly, as Unix tools do (exit 141).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
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
    "thresholds",
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


def _command_parser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


def flag_message(exc: MlbalanceError, parser: argparse.ArgumentParser | None) -> str:
    """The message of *exc* with the library's parameter names turned into the command's flags.

    An error names the parameters it is about
    (``exc.params``); each mention ``name``, ``name=True`` or ``name=False`` in the message
    becomes ``--name``, ``--name`` or ``--no-name`` as the command spells it. This is the one
    place where library names meet flags.
    """
    message = str(exc)
    if not exc.params or parser is None:
        return message
    flags = {
        a.dest: a.option_strings
        for a in parser._actions
        if a.option_strings and a.dest not in ("help", argparse.SUPPRESS)
    }
    for param in exc.params:
        options = flags.get(param)
        if not options:
            continue
        flag = next((o for o in options if o.startswith("--")), options[0])
        negative = next((o for o in options if o.startswith("--no-")), None)
        word = rf"(?<![\w./\\-]){re.escape(param)}"  # not inside a path or another name
        message = re.sub(word + r"=True(?![\w])", flag, message)
        if negative:
            message = re.sub(word + r"=False(?![\w])", negative, message)
        message = re.sub(word + r"(?![\w/\\-])", flag, message)
    return message


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
        text = flag_message(exc, _command_parser(parser, args.command))
        print(f"mlbalance: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlbalance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except (OSError, MemoryError) as exc:
        if debug:
            raise
        print(f"mlbalance: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug or not _is_arrow_error(exc):
            raise
        # a pyarrow error no reader turned into a message: still one line, never a traceback
        print(f"mlbalance: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        return _broken_pipe()
    return int(code or 0)


#: Exit status of a command whose output pipe was closed (128 + SIGPIPE, as the shell reports).
EXIT_BROKEN_PIPE = 141


def _broken_pipe() -> int:
    """Stop writing to a pipe the reader closed, quietly (stdout goes to /dev/null)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout is not a file descriptor
        pass
    return EXIT_BROKEN_PIPE


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_arrow_error(exc: BaseException) -> bool:
    return any(c.__module__.startswith("pyarrow") for c in type(exc).__mro__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
