"""The CLI frame: one-line errors and warnings, --version, --help of every command."""

from __future__ import annotations

import warnings

import pytest

from mlbalance import __version__
from mlbalance.cli import COMMANDS, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mlbalance {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: mlbalance" in capsys.readouterr().out


def test_warnings_print_as_one_line_and_display_is_restored(tmp_path, capsys, monkeypatch):
    """A warning raised by a command prints as `mlbalance: warning: ...`, no source line."""
    import mlbalance.cli.synth as synth_cli

    def run(args):
        warnings.warn("something to know", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(synth_cli, "run", run)
    before = warnings.showwarning
    assert main(["synth", "--out", str(tmp_path / "x.parquet")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "mlbalance: warning: something to know"
    assert warnings.showwarning is before


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["analyse", str(tmp_path / "missing.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlbalance: error: ") and "no such file" in err
    assert "\n" not in err
