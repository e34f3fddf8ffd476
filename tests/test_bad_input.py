"""Bad input gets one clear line, a non-zero exit, and leaves nothing written.

A table-driven corpus: each :class:`Case` names the files to create (builders below), the
command line (run in the case's own folder, paths relative to it), and what the one error
line must mention. Adding a case is one entry in ``CASES``. Every case checks:

* the exit code (2 for bad input or arguments);
* stderr is exactly one line, ``mlbalance: error: ...``, with no traceback;
* the line mentions each of ``mention`` (the file, column or value at fault);
* the folder is as it was: no output, no half-written or temporary file left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli

Builder = Callable[[Path], None]

# --- file builders: each writes one file (or folder) at the path it is given ---------------------


def _table(n: int = 40, labels: list | None = None) -> pa.Table:
    rows = labels if labels is not None else [["a"] if i % 3 else ["a", "b"] for i in range(n)]
    return pa.table({"id": np.arange(len(rows)), "text": [f"t{i}" for i in range(len(rows))],
                     "labels": rows})  # fmt: skip


def parquet(table: pa.Table | None = None) -> Builder:
    """A valid Parquet file (the default table: 40 rows, labels a / a+b)."""
    return lambda p: pq.write_table(table if table is not None else _table(), p)


def truncated() -> Builder:
    """A Parquet file cut in half (a copy interrupted, a download cut short)."""

    def build(p: Path) -> None:
        pq.write_table(_table(), p)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])

    return build


def zero_bytes() -> Builder:
    return lambda p: p.write_bytes(b"")


def corrupt_footer() -> Builder:
    """A Parquet file whose footer length is garbage (the magic bytes intact)."""

    def build(p: Path) -> None:
        pq.write_table(_table(), p)
        data = bytearray(p.read_bytes())
        data[-8:-4] = b"\xff\xff\xff\x7f"
        p.write_bytes(bytes(data))

    return build


def text(content: str | bytes) -> Builder:
    data = content.encode() if isinstance(content, str) else content
    return lambda p: p.write_bytes(data)


def folder(**files: Builder) -> Builder:
    """A folder of shards (names with '.' written as '_dot_' in keywords: see shard())."""

    def build(p: Path) -> None:
        p.mkdir()
        for name, make in files.items():
            make(p / name.replace("_dot_", "."))

    return build


def dangling_link(target: str) -> Builder:
    return lambda p: os.symlink(target, p)


def duplicate_columns() -> Builder:
    def build(p: Path) -> None:
        t = pa.Table.from_arrays(
            [pa.array([["a"], ["b"]]), pa.array([["a"], ["b"]])], names=["labels", "labels"]
        )
        pq.write_table(t, p)

    return build


# --- the corpus -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: files to create, the command, and what its one error line must say."""

    id: str
    files: dict[str, Builder]
    argv: tuple[str, ...]
    mention: tuple[str, ...]
    code: int = 2
    forbid: tuple[str, ...] = ()  # must not appear (e.g. a temporary path)


DEEP = "[" * 5000 + "]" * 5000
LATIN1 = "id,text,labels\n1,caf\xe9,a\n2,ok,b\n".encode("latin-1")

CASES: list[Case] = [
    Case("split-truncated-parquet", {"data.parquet": truncated()},
         ("split", "data.parquet", "--out", "out"), ("data.parquet", "Parquet")),
    Case("analyse-zero-byte-parquet", {"data.parquet": zero_bytes()},
         ("analyse", "data.parquet"), ("data.parquet", "0 bytes")),
    Case("resample-corrupt-parquet", {"data.parquet": corrupt_footer()},
         ("resample", "data.parquet", "--method", "ml-ros", "--out", "out"), ("data.parquet",)),
    Case("split-truncated-shard-in-folder",
         {"data": folder(part_dot_0_dot_parquet=parquet(), part_dot_1_dot_parquet=truncated())},
         ("split", "data", "--out", "out"), ("part.1.parquet",)),
    Case("analyse-zero-byte-shard-in-folder",
         {"data": folder(a_dot_parquet=parquet(), b_dot_parquet=zero_bytes())},
         ("analyse", "data"), ("b.parquet",)),
    Case("resample-corrupt-shard-in-folder",
         {"data": folder(a_dot_parquet=parquet(), b_dot_parquet=corrupt_footer())},
         ("resample", "data", "--method", "ml-ros", "--out", "out"), ("b.parquet",)),
    Case("split-duplicate-csv-columns", {"data.csv": text("id,labels,labels\n1,a,b\n2,b,a\n")},
         ("split", "data.csv", "--out", "out"), ("data.csv", "'labels'", "2 times")),
    Case("analyse-duplicate-parquet-columns", {"data.parquet": duplicate_columns()},
         ("analyse", "data.parquet"), ("data.parquet", "'labels'")),
    Case("split-strings-and-ints-in-shards",
         {"data": folder(a_dot_parquet=parquet(_table(labels=[["l3"], ["l1"]] * 10)),
                         b_dot_parquet=parquet(_table(labels=[[3], [1]] * 10)))},
         ("split", "data", "--out", "out"), ("a.parquet", "b.parquet", "integer", "string")),
    Case("resample-strings-and-ints-in-shards",
         {"data": folder(a_dot_parquet=parquet(_table(labels=[["l3"], ["l1"], ["l1"]] * 10)),
                         b_dot_parquet=parquet(_table(labels=[[3], [1], [1]] * 10)))},
         ("resample", "data", "--method", "ml-ros", "--out", "out"), ("a.parquet", "b.parquet")),
    Case("analyse-strings-and-ints-in-shards",
         {"data": folder(a_dot_parquet=parquet(_table(labels=[["l3"], ["3"]])),
                         b_dot_parquet=parquet(_table(labels=[[3], [1]])))},
         ("analyse", "data"), ("a.parquet", "b.parquet")),
    Case("analyse-deeply-nested-label-cell", {"data.csv": text(f'text,labels\nx,"{DEEP}"\n')},
         ("analyse", "data.csv"), ("data.csv", "row 0", "nested")),
    Case("split-deeply-nested-label-cell", {"data.csv": text(f'text,labels\nx,"{DEEP}"\n')},
         ("split", "data.csv", "--out", "out"), ("data.csv", "nested")),
    Case("split-dangling-symlink-out", {"data.parquet": parquet(), "out": dangling_link("gone")},
         ("split", "data.parquet", "--out", "out"), ("out", "symbolic link", "gone")),
    Case("resample-dangling-symlink-out",
         {"data.parquet": parquet(), "out": dangling_link("nowhere/x")},
         ("resample", "data.parquet", "--method", "ml-ros", "--out", "out"), ("symbolic link",)),
    Case("split-csv-not-utf8", {"data.csv": text(LATIN1)},
         ("split", "data.csv", "--out", "out"), ("data.csv", "line 2", "0xe9", "--encoding")),
    Case("analyse-tsv-not-utf8", {"data.tsv": text(b"text\tlabels\nok\ta\ncaf\xe9\tb\n")},
         ("analyse", "data.tsv"), ("data.tsv", "line 3", "--encoding")),
    Case("analyse-jsonl-not-utf8",
         {"data.jsonl": text(b'{"text": "ok", "labels": ["a"]}\n{"text": "caf\xe9", "labels": []}\n')},
         ("analyse", "data.jsonl"), ("data.jsonl", "line 2")),
    Case("prepare-mlsmote-without-features", {"data.parquet": parquet(_table(90))},
         ("prepare", "data.parquet", "--method", "mlsmote", "--out", "out"),
         ("data.parquet", "'embedding'"), forbid=(".tmp", "_splits")),
    Case("resample-mlsmote-number-column-as-embedding",
         {"data.parquet": parquet(_table(90).append_column("x", pa.array(np.ones(90))))},
         ("resample", "data.parquet", "--method", "mlsmote", "--features", "x", "--out", "out"),
         ("'x'", "--feature-columns", "--feature-prefix")),
    Case("split-unknown-encoding", {"data.csv": text("text,labels\na,b\n")},
         ("split", "data.csv", "--encoding", "klingon", "--out", "out"), ("--encoding", "klingon")),
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under *root* (hidden ones too) with its kind and size."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link", 0)
        elif p.is_dir():
            out[str(p.relative_to(root))] = ("dir", 0)
        else:
            out[str(p.relative_to(root))] = ("file", p.stat().st_size)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_one_line_nothing_written(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name, build in case.files.items():
        build(tmp_path / name)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = cli.main(list(case.argv))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == case.code, captured.err
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("mlbalance: error: ") and "Traceback" not in line, line
    for word in case.mention:
        assert word in line, f"{word!r} not in {line!r}"
    for word in case.forbid:
        assert word not in line, f"{word!r} in {line!r}"
    assert _snapshot(tmp_path) == before  # nothing written, nothing left behind


def test_help_has_no_doubled_percent(capsys: pytest.CaptureFixture) -> None:
    """argparse formats % only in help= strings; a description with %% prints it twice."""
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        out = capsys.readouterr().out
        assert "%%" not in out, name


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`mlbalance analyse ... | head -1` when head has already gone: no 'Broken pipe' error,
    and the status a shell reports for a writer stopped by SIGPIPE (141), not 1."""
    pq.write_table(_table(), tmp_path / "d.parquet")
    env = {**os.environ, "MLBALANCE_NO_PROGRESS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlbalance", "analyse", str(tmp_path / "d.parquet"), "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Broken pipe" not in err and "Traceback" not in err and "error" not in err, err
