"""``--json -`` prints JSON only on stdout, for every command that has ``--json``.

The charter: with ``--json -`` the human summary goes to stderr, so
``mlbalance <command> ... --json - | python -m json.tool`` works. One test runs every command
of ``mlbalance.cli.COMMANDS`` that has the flag, on tiny inputs (the synthetic data, the tiny
BERT), in pipeline order, and parses what each printed on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.cli import COMMANDS, build_parser, main


def _commands_with_json() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        name
        for name in COMMANDS
        if any("--json" in a.option_strings for a in sub.choices[name]._actions)
    ]


def _argv(tmp: Path, data: Path, model: Path) -> dict[str, list[str]]:
    """Tiny arguments per command, in pipeline order (later ones read earlier outputs)."""
    split = tmp / "split"
    return {
        "analyse": [str(data)],
        "split": [str(data), "--out", str(split)],
        "embed": [str(data), "--model", str(model), "--out", str(tmp / "emb.parquet"),
                  "--max-length", "16"],
        "resample": [str(data), "--method", "ml-ros", "--out", str(tmp / "resampled")],
        "verify": [str(tmp / "resampled")],
        "prepare": [str(data), "--out", str(tmp / "prepared"), "--method", "ml-ros"],
        "train": ["--train", str(split / "train.parquet"), "--val", str(split / "val.parquet"),
                  "--model", str(model), "--out", str(tmp / "model"), "--epochs", "1",
                  "--max-length", "16", "--batch-size", "64", "--eval-batch-size", "256"],
        "evaluate": ["--model", str(tmp / "model"), "--data", str(split / "test.parquet")],
        "predict": ["--model", str(tmp / "model"), "--data", str(split / "test.parquet"),
                    "--out", str(tmp / "pred.parquet")],
    }  # fmt: skip


def test_every_command_with_json_prints_only_json_on_stdout(tmp_path, capsys):
    from mlbalance.train.tiny import make_tiny_model

    data = tmp_path / "data.parquet"
    assert main(["synth", "--rows", "300", "--labels", "8", "--out", str(data)]) == 0
    corpus = pq.read_table(data).column("text").to_pylist()
    model = make_tiny_model(tmp_path / "tiny", corpus, vocab_size=300, hidden_size=16)
    capsys.readouterr()
    argv = _argv(tmp_path, data, model)
    with_json = _commands_with_json()
    assert set(with_json) == set(argv), "give every command with --json tiny arguments here"
    for command in argv:  # pipeline order
        code = main([command, *argv[command], "--json", "-"])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: exit {code}: {err[-2000:]}"
        try:
            json.loads(out)
        except json.JSONDecodeError as exc:
            pytest.fail(f"`mlbalance {command} --json -` stdout is not JSON ({exc}): {out[:300]!r}")
        if command in ("train", "evaluate", "predict"):
            assert command in err, f"{command}: its human summary should go to stderr"
