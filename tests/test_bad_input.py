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

import errno
import os
import pickle
import shutil
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


# --- trained artifacts (the train/evaluate/predict cases): built once per session ---------------

_CACHE: dict[str, Path] = {}
_ROOT: list[Path] = []  # the session's cache folder (set by the fixture below)


@pytest.fixture(scope="session", autouse=True)
def _artifact_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    _ROOT.append(tmp_path_factory.mktemp("trained"))


def _emb_table(n: int = 120, dim: int = 8, names: tuple[str, ...] = ("a", "b", "c")) -> pa.Table:
    """Embeddings that a head can learn: a noisy image of each row's labels."""
    rng = np.random.default_rng(0)
    y = rng.random((n, len(names))) < np.linspace(0.5, 0.2, len(names))
    x = (y @ rng.normal(size=(len(names), dim)) + 0.3 * rng.normal(size=(n, dim))).astype("f4")
    rows = [[names[j] for j in np.flatnonzero(r)] for r in y]
    emb = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
    return pa.table({"id": np.arange(n), "embedding": emb, "labels": rows})


def _train(out: Path, data: Path, **options: object) -> Path:
    from mlbalance.train.config import TrainConfig
    from mlbalance.train.trainer import train

    cfg = TrainConfig(train=str(data), val=str(data), out=str(out), epochs=1, **options)
    train(cfg, log=lambda line: None, progress=False)
    return out


def _artifact(name: str) -> Path:
    """A trained artifact of the cache, made on first use: ``head`` (a model folder on
    embeddings), ``text`` (a tiny BERT model folder), ``ckpt`` (the checkpoints of a run)."""
    if name in _CACHE:
        return _CACHE[name]
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    root = _ROOT[0] / name
    root.mkdir()
    data = root / "emb.parquet"
    pq.write_table(_emb_table(), data)
    if name == "head":
        _CACHE[name] = _train(root / "model", data)
    elif name == "ckpt":
        _train(root / "model", data, checkpoint_dir=str(root / "ckpt"), keep_checkpoints=True)
        _CACHE[name] = root / "ckpt"
    elif name == "text":
        from mlbalance.train.tiny import make_tiny_model

        table = _table(60)
        pq.write_table(table, root / "text.parquet")
        tiny = make_tiny_model(root / "tiny", table.column("text").to_pylist(), vocab_size=60,
                               hidden_size=8, num_layers=1, num_heads=1)  # fmt: skip
        _CACHE[name] = _train(root / "model", root / "text.parquet", model=str(tiny),
                              max_length=8, batch_size=32)  # fmt: skip
    return _CACHE[name]


def trained(name: str, *, remove: tuple[str, ...] = (), replace: dict | None = None) -> Builder:
    """A copy of a trained artifact, with some files removed or replaced (bytes or builder)."""

    def build(p: Path) -> None:
        shutil.copytree(_artifact(name), p)
        for pattern in remove:
            for f in p.glob(pattern):
                f.unlink()
        for rel, content in (replace or {}).items():
            if callable(content):
                (p / rel).unlink()
                content(p / rel)
            else:
                (p / rel).write_bytes(content)

    return build


class _Payload:
    """A pickle that would create a file if it were ever unpickled with code execution."""

    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


HOSTILE = pickle.dumps(_Payload(), protocol=2)  # torch.save's protocol
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def full_disk(target: str) -> Callable[[pytest.MonkeyPatch], None]:
    """Make the safetensors writer of *target* files ("model folder" or "checkpoint") fail as
    a full disk does (ENOSPC)."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        import safetensors.torch

        real = safetensors.torch.save_file

        def no_space(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def no_space_in_folder(tensors: object, filename: str, *a: object, **kw: object) -> None:
            if any(part.endswith(".ckpt") for part in Path(filename).parts):  # a checkpoint
                return real(tensors, filename, *a, **kw)
            no_space()

        if target == "model folder":  # checkpoints are written; the folder's head is not
            monkeypatch.setattr(safetensors.torch, "save_file", no_space_in_folder)
        else:
            monkeypatch.setattr(safetensors.torch, "save_model", no_space)

    return patch


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
    torch: bool = False  # needs the train extra (skipped on a core install)
    patch: Callable[[pytest.MonkeyPatch], None] | None = None  # e.g. a full disk
    logs: bool = False  # progress lines may precede the error line (train logs its steps)
    kept: tuple[str, ...] = ()  # entries that may remain, complete, and that the line names


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


# the train / evaluate / predict cases
EMB = {"emb.parquet": parquet(_emb_table())}
TRAIN = ("train", "--train", "emb.parquet", "--val", "emb.parquet", "--out", "m", "--epochs", "1")
RESUME = (*TRAIN[:-1], "2", "--checkpoint-dir", "ckpt", "--resume")
NUMBERS = "text,labels\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20))
LATIN1_ROWS = "text,labels\n" + "ok,a\n" * 5 + "caf\xe9,b\n"

ARFF = "@relation r\n@attribute x numeric\n@attribute a {0,1}\n@data\n1.5,1\n2.5,0\n"
ARFF_XML = '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="a"/></labels>'

FOLDS = {
    "folds": folder(**{f"fold-{k}_dot_parquet": parquet(_emb_table()) for k in range(2)}),
    "emb.parquet": parquet(_emb_table()),
}

CASES += [
    Case("train-folds-with-train", FOLDS,
         ("train", "--folds", "folds", "--train", "emb.parquet", "--out", "m"),
         ("--folds cannot be combined with --train",), torch=True),
    Case("train-folds-too-few", FOLDS, ("train", "--folds", "folds", "--out", "m"),
         ("folds holds 2 fold(s)", "at least 3"), torch=True),
    Case("train-folds-not-a-folder", EMB, ("train", "--folds", "nope", "--out", "m"),
         ("nope: no such folder",), torch=True),
    Case("train-full-disk-writing-the-model-folder", EMB, TRAIN,
         ("cannot write", "head.safetensors", "No space left on device", "m.ckpt", "resume"),
         torch=True, patch=full_disk("model folder"), logs=True, kept=("m.ckpt",)),
    Case("train-full-disk-writing-a-checkpoint", EMB, TRAIN,
         ("cannot write", "m.ckpt/best", "No space left on device"),
         torch=True, patch=full_disk("checkpoint"), logs=True),
    Case("train-resume-hostile-optimizer-pickle",
         {**EMB, "ckpt": trained("ckpt", replace={"last/optimizer.pt": HOSTILE})}, RESUME,
         ("ckpt/last/optimizer.pt", "refused to load", "GLOBAL posix.system"),
         forbid=("weights_only=False",), torch=True, logs=True),
    Case("train-resume-model-safetensors-not-safetensors",
         {**EMB, "ckpt": trained("ckpt", replace={"last/model.safetensors": HOSTILE})}, RESUME,
         ("ckpt/last/model.safetensors", "not a readable weight file"), torch=True, logs=True),
    Case("train-resume-another-label-vocabulary",
         {"emb.parquet": parquet(_emb_table(names=("a", "b", "d"))), "ckpt": trained("ckpt")},
         RESUME, ("label vocabulary", "only in the checkpoint: c", "only in the data: d"),
         torch=True, logs=True),
    Case("predict-model-safetensors-not-safetensors",
         {"m": trained("text", replace={"model.safetensors": HOSTILE}), "d.parquet": parquet()},
         ("predict", "--model", "m", "--data", "d.parquet", "--out", "p.parquet"),
         ("m/model.safetensors", "not a readable weight file"), torch=True),
    Case("evaluate-corrupt-thresholds-json",
         {**EMB, "m": trained("head", replace={"thresholds.json": b'{"labels": [0.5,'})},
         ("evaluate", "--model", "m", "--data", "emb.parquet"),
         ("m/thresholds.json", "cannot read thresholds"), torch=True),
    Case("predict-corrupt-thresholds-json",
         {**EMB, "m": trained("head", replace={"thresholds.json": b"[]"})},
         ("predict", "--model", "m", "--data", "emb.parquet", "--out", "p.parquet"),
         ("m/thresholds.json", "cannot read thresholds"), torch=True),
    Case("evaluate-model-folder-without-tokenizer",
         {"m": trained("text", remove=TOKENIZER_FILES), "d.parquet": parquet()},
         ("evaluate", "--model", "m", "--data", "d.parquet"), ("m", "no tokenizer"), torch=True),
    Case("train-model-folder-without-tokenizer",
         {"tm": trained("text", remove=TOKENIZER_FILES), "d.parquet": parquet()},
         ("train", "--train", "d.parquet", "--val", "d.parquet", "--model", "tm", "--out", "m"),
         ("tm", "no tokenizer"), torch=True, logs=True),
    Case("train-text-column-holding-numbers", {"tm": trained("text"), "d.csv": text(NUMBERS)},
         ("train", "--train", "d.csv", "--val", "d.csv", "--model", "tm", "--out", "m"),
         ("d.csv", "'text'", "int64", "--feature-columns"), torch=True, logs=True),
    Case("predict-text-column-holding-numbers", {"m": trained("text"), "d.csv": text(NUMBERS)},
         ("predict", "--model", "m", "--data", "d.csv", "--out", "p.parquet"),
         ("d.csv", "'text'", "int64", "not strings"), torch=True),
    Case("train-model-is-a-file", {"d.parquet": parquet(), "model.bin": text("weights")},
         ("train", "--train", "d.parquet", "--val", "d.parquet", "--model", "model.bin",
          "--out", "m"), ("model.bin", "a file"), torch=True, logs=True),
    Case("evaluate-model-is-a-file", {"d.parquet": parquet(), "model.bin": text("weights")},
         ("evaluate", "--model", "model.bin", "--data", "d.parquet"), ("model.bin", "a file"),
         torch=True),
    Case("predict-model-is-a-file", {"d.parquet": parquet(), "model.bin": text("weights")},
         ("predict", "--model", "model.bin", "--data", "d.parquet", "--out", "p.parquet"),
         ("model.bin", "a file"), torch=True),
    Case("train-csv-not-utf8", {"tm": trained("text"), "d.csv": text(LATIN1_ROWS.encode("latin-1"))},
         ("train", "--train", "d.csv", "--val", "d.csv", "--model", "tm", "--out", "m"),
         ("d.csv", "line 7", "0xe9", "--encoding"), torch=True, logs=True),
    Case("evaluate-csv-not-utf8", {"m": trained("text"), "d.csv": text(LATIN1_ROWS.encode("latin-1"))},
         ("evaluate", "--model", "m", "--data", "d.csv"), ("d.csv", "line 7", "--encoding"),
         torch=True),
    Case("predict-csv-not-utf8", {"m": trained("text"), "d.csv": text(LATIN1_ROWS.encode("latin-1"))},
         ("predict", "--model", "m", "--data", "d.csv", "--out", "p.parquet"),
         ("d.csv", "line 7", "--encoding"), torch=True),
    Case("train-number-column-as-embedding",
         {"d.parquet": parquet(_table(40).append_column("x", pa.array(np.ones(40))))},
         ("train", "--train", "d.parquet", "--val", "d.parquet", "--embedding-column", "x",
          "--out", "m"), ("d.parquet", "'x'", "--feature-columns", "--feature-prefix"),
         torch=True, logs=True),
    Case("train-feature-column-missing",
         {"d.parquet": parquet(_table(40).append_column("f1", pa.array(np.ones(40))))},
         ("train", "--train", "d.parquet", "--val", "d.parquet", "--feature-columns", "f1,f2",
          "--out", "m"), ("d.parquet", "'f2'"), torch=True, logs=True),
    Case("predict-number-column-where-the-head-reads-an-embedding",
         {"m": trained("head"), "d.parquet": parquet(
             _table(40).append_column("embedding", pa.array(np.ones(40))))},
         ("predict", "--model", "m", "--data", "d.parquet", "--out", "p.parquet"),
         ("d.parquet", "'embedding'", "one number per row", "the model reads the embedding"),
         forbid=("feature_columns", "--feature"), torch=True),
    Case("evaluate-unknown-encoding", {"m": trained("head"), "d.csv": text("text,labels\na,b\n")},
         ("evaluate", "--model", "m", "--data", "d.csv", "--encoding", "klingon"),
         ("--encoding", "klingon"), torch=True),
    Case("predict-arff-with-a-text-model",
         {"m": trained("text"), "d.arff": text(ARFF), "d.xml": text(ARFF_XML)},
         ("predict", "--model", "m", "--data", "d.arff", "--out", "p.parquet"),
         ("d.arff", "no column 'text'", "the text column 'text'"), torch=True),
    Case("predict-data-has-a-scores-column",
         {"m": trained("head"), "emb.parquet": parquet(_emb_table().append_column(
             "scores", pa.array(np.zeros(120))))},
         ("predict", "--model", "m", "--data", "emb.parquet", "--out", "p.parquet"),
         ("emb.parquet", "'scores'"), torch=True),
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
    if case.torch:
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
    for name, build in case.files.items():
        build(tmp_path / name)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    if case.patch is not None:
        case.patch(monkeypatch)
    code = cli.main(list(case.argv))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == case.code, captured.err
    if case.logs:  # the command's progress lines, then one error line, the last
        errors = [x for x in lines if x.startswith("mlbalance: error: ")]
        assert errors == lines[-1:], captured.err
        assert not any(x.startswith("mlbalance: warning") for x in lines), captured.err
    else:
        assert len(lines) == 1, captured.err
    line = lines[-1]
    assert line.startswith("mlbalance: error: ") and "Traceback" not in captured.err, line
    for word in case.mention:
        assert word in line, f"{word!r} not in {line!r}"
    for word in case.forbid:
        assert word not in line, f"{word!r} in {line!r}"
    after = _snapshot(tmp_path)
    for entry in case.kept:  # complete results the line names (checkpoints to resume from)
        assert entry in after, entry
        after = {k: v for k, v in after.items() if k != entry and not k.startswith(entry + "/")}
    assert after == before  # nothing written, nothing left behind


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
