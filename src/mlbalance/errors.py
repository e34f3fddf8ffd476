"""The one error type that the CLI turns into a clean one-line message."""

from __future__ import annotations


class MlbalanceError(ValueError):
    """A problem with the user's input or parameters.

    The message must say what was wrong and where (file, column, row or value).
    The CLI prints ``mlbalance: error: <message>`` and exits with code 2; set
    ``MLBALANCE_DEBUG=1`` for the full traceback.
    """


class InputError(MlbalanceError):
    """Malformed or missing input data (a file, column, row or cell)."""


class ParameterError(MlbalanceError):
    """A parameter outside its valid range or of the wrong type."""
