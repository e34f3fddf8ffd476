"""A run killed at any moment leaves ``--out`` absent or complete; the next run cleans up.

A real ``kill -9`` costs a fresh interpreter per moment (seconds each on a busy machine), so
the kill is simulated in-process: every file-system step of a run (create, write, rename,
chmod, remove) is counted, and at step *k* the run "dies": an exception no handler catches
unwinds it while every later file-system call does nothing, so no ``finally`` block can tidy
up (as after SIGKILL); open descriptors close, which releases the output lock as the kernel
would. Each test kills the run at every one of its steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli
from mlbalance.io import read_labels, writers
from mlbalance.io.shards import verify_shards


class Killed(BaseException):
    """The simulated SIGKILL (a BaseException: no ``except Exception`` stops it)."""


_STEPS: list[tuple[Any, str]] = [
    (os, "replace"),
    (os, "rename"),
    (os, "chmod"),
    (os, "unlink"),
    (os, "rmdir"),
    (os, "mkdir"),
    (os, "ftruncate"),
    (shutil, "rmtree"),
    (tempfile, "mkdtemp"),
    (tempfile, "mkstemp"),
    (pq, "write_table"),
    (Path, "write_text"),
    (writers, "exchange"),
]


@contextmanager
def die_at(step: int | None) -> Iterator[dict[str, int]]:
    """Count file-system steps; at *step* raise Killed and make every later step a no-op."""
    state = {"n": 0, "dead": 0}
    counting = threading.Lock()
    saved = [(owner, name, getattr(owner, name)) for owner, name in _STEPS]

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def step_or_die(*args: Any, **kwargs: Any) -> Any:
            with counting:  # the shard writer's threads take steps too
                if state["dead"]:
                    raise Killed  # a dead process does nothing more
                state["n"] += 1
                if state["n"] == step:
                    state["dead"] = 1
                    raise Killed
            return fn(*args, **kwargs)

        return step_or_die

    # descriptors the run opened with os.open (the output lock), with the file each one was:
    # at death only those still open on that same file are closed (a number the run closed
    # may since belong to another file of this process, e.g. one a pytest or writer thread
    # opened, and closing that would break it)
    opened: list[tuple[int, tuple[int, int]]] = []
    real_open = os.open

    def record_open(*args: Any, **kwargs: Any) -> int:
        fd = real_open(*args, **kwargs)
        st = os.fstat(fd)
        opened.append((fd, (st.st_dev, st.st_ino)))
        return fd

    for owner, name, fn in saved:
        setattr(owner, name, wrap(fn))
    os.open = record_open  # type: ignore[assignment]
    try:
        yield state
    finally:
        os.open = real_open  # type: ignore[assignment]
        for owner, name, fn in saved:
            setattr(owner, name, fn)
        if state["dead"]:  # the kernel closes a killed process's files (and its locks)
            for fd, same in opened:
                with contextlib.suppress(OSError):
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) == same:
                        os.close(fd)


def _data(path: Path, n: int = 600) -> None:
    rng = np.random.default_rng(0)
    p = 0.3 / (1 + np.arange(12))
    rows = [[f"L{j}" for j in np.flatnonzero(r)] for r in rng.random((n, 12)) < p]
    text = [f"row {i} " + "x" * 40 for i in range(n)]
    pq.write_table(pa.table({"id": np.arange(n), "text": text, "labels": rows}), path)


def _run(argv: list[str], step: int | None) -> tuple[bool, int]:
    """Run the command, dying at *step*; ``(died, steps taken)``."""
    with die_at(step) as state:
        try:
            assert cli.main(argv) == 0
        except Killed:
            return True, state["n"]
    return False, state["n"]


def _leftovers(parent: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def _complete_split(out: Path, src: Path) -> bool:
    files = sorted(out.glob("*.parquet"))
    report = out / "__mlbalance__" / "split_report.json"
    if [f.name for f in files] != ["test.parquet", "train.parquet", "val.parquet"]:
        return False
    return report.is_file() and sum(read_labels(f).n_rows for f in files) == read_labels(src).n_rows


@pytest.mark.slow
@pytest.mark.parametrize("overwrite", [False, True], ids=["new-output", "overwrite"])
def test_split_killed_at_every_step(tmp_path: Path, overwrite: bool, recwarn) -> None:
    src = tmp_path / "data.parquet"
    _data(src)
    out = tmp_path / "out"
    argv = ["split", str(src), "--out", str(out), "--seed", "1", "--overwrite"]
    older = [*argv[:4], "--seed", "2", "--overwrite"]

    probe = tmp_path / "probe"
    (probe / "a").mkdir(parents=True)
    (probe / "b").mkdir()

    def start_state() -> None:  # no output, or a complete older one
        if overwrite:
            assert _run(older, None)[0] is False
        elif out.exists():
            shutil.rmtree(out)

    for _ in range(2):  # the first run also fills caches (numba): count the second
        start_state()
        died, steps = _run(argv, None)
    assert not died and steps > 5
    reference = {f.name: f.read_bytes() for f in out.glob("*.parquet")}
    for step in range(1, steps + 1):
        start_state()
        assert _run(argv, step)[0]
        # absent (no output before) or complete (the old or the new one), never half-written;
        # without an atomic exchange, a kill between the two renames of an overwrite leaves
        # the old output aside, and the next run puts it back
        swaps = writers.exchange(probe / "a", probe / "b")
        assert _complete_split(out, src) or not ((overwrite and swaps) or out.exists()), step
        assert _run(argv, None)[0] is False  # the next run cleans up and succeeds
        assert {f.name: f.read_bytes() for f in out.glob("*.parquet")} == reference, step
        assert _leftovers(tmp_path, {"data.parquet", "out", "probe"}) == [], step


@pytest.mark.slow
def test_resample_killed_at_every_step(tmp_path: Path, recwarn) -> None:
    src = tmp_path / "train.parquet"
    _data(src)
    out = tmp_path / "out"
    argv = ["resample", str(src), "--method", "ml-ros", "--out", str(out), "--rows-per-shard",
            "300", "--overwrite"]  # fmt: skip
    for _ in range(2):  # the first run also fills caches (numba): count the second
        died, steps = _run(argv, None)
    assert not died and verify_shards(out)["ok"]
    for step in range(1, steps + 1):
        died, _ = _run(argv, step)
        assert died
        assert out.exists() and verify_shards(out)["ok"], step  # the previous complete output
        died, _ = _run(argv, None)
        assert not died and verify_shards(out)["ok"]
        assert _leftovers(tmp_path, {"train.parquet", "out"}) == [], step
