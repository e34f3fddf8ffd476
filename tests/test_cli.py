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


def test_library_parameter_names_become_the_flags_the_user_typed(tmp_path, capsys):
    out = tmp_path / "d.parquet"
    assert main(["synth", "--rows", "50", "--labels", "5", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["synth", "--rows", "50", "--labels", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err
    assert "overwrite=True" not in err


def test_flag_message_maps_each_named_parameter_once():
    import argparse

    from mlbalance.cli import flag_message
    from mlbalance.errors import InputError, ParameterError

    parser = argparse.ArgumentParser()
    parser.add_argument("--min-rows", type=int)
    parser.add_argument("--max-rows", type=int)
    parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction)
    exc = ParameterError(
        "min_rows (5) must not exceed max_rows (3); shuffle=False; min_rows_x stays",
        param=("min_rows", "max_rows", "shuffle"),
    )
    assert flag_message(exc, parser) == (
        "--min-rows (5) must not exceed --max-rows (3); --no-shuffle; min_rows_x stays"
    )
    # a name inside a path stays as it is
    in_path = ParameterError("min_rows: /tmp/min_rows/x and min_rows/y", param="min_rows")
    assert flag_message(in_path, parser) == "--min-rows: /tmp/min_rows/x and min_rows/y"
    # parameters not named in the error, and other error kinds, are left alone
    assert flag_message(ParameterError("min_rows bad"), parser) == "min_rows bad"
    assert flag_message(InputError("min_rows bad"), parser) == "min_rows bad"
