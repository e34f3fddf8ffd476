"""The one error type that the CLI turns into a clean one-line message."""

from __future__ import annotations

from collections.abc import Sequence


class MlbalanceError(ValueError):
    """A problem with the user's input or parameters.

    The message must say what was wrong and where (file, column, row or value).
    The CLI prints ``mlbalance: error: <message>`` and exits with code 2; set
    ``MLBALANCE_DEBUG=1`` for the full traceback.

    Library code names parameters by their Python names (``min_rows``, ``overwrite=True``,
    ``text_column``) and passes them as *param*; the CLI rewrites those names into the flags
    the user typed (``--min-rows``, ``--overwrite``, ``--text-column``) in one place
    (:func:`mlbalance.cli.flag_message`).

    Parameters
    ----------
    message : str
        What was wrong and where.
    param : str or sequence of str, optional
        The parameter(s) the message names.
    """

    def __init__(self, message: str, *, param: str | Sequence[str] | None = None) -> None:
        super().__init__(message)
        if param is None:
            self.params: tuple[str, ...] = ()
        elif isinstance(param, str):
            self.params = (param,)
        else:
            self.params = tuple(param)


class InputError(MlbalanceError):
    """Malformed or missing input data (a file, column, row or cell)."""


class ParameterError(MlbalanceError):
    """A parameter outside its valid range or of the wrong type (named by *param*)."""
