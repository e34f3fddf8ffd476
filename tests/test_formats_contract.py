"""The on-disk contract: labels at the edge, names in every written file, nothing machine-local.

* Whatever the input layout, every Parquet file mlbalance writes holds the labels as a
  ``list<string>`` column of label names with the vocabulary in its metadata, and reads back,
  from any working directory and with no label flag, to the same labels.
* Metadata never makes mlbalance open a file; a manifest never makes ``verify`` read outside
  its folder.
* Side files start with ``_``: pandas, pyarrow, ``pyarrow.dataset`` and Hugging Face
  ``datasets`` read a split or resample folder as it is.
* Folders written by mlbalance 0.1 (``manifest.json``, label ids with a names-file path in the
  metadata) still read and verify.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli
from mlbalance.io import LabelSpec, read_labels, read_metadata, write_parquet
from mlbalance.io.canonical import LABEL_TYPE

NAMES = ["anger", "joy", "neutral", "fear", "rare"]


def _rows(n: int = 240) -> list[list[str]]:
    """Label lists over NAMES, long-tailed, some rows empty."""
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.2, 0.1, 0.03])
    dense = rng.random((n, len(NAMES))) < p
    return [[NAMES[j] for j in np.flatnonzero(r)] for r in dense]


def _write_input(folder: Path, layout: str) -> tuple[str, list[str]]:
    """Write the dataset in *layout* into *folder*; return its file name and the label flags."""
    rows = _rows()
    ids = [f"r{i}" for i in range(len(rows))]
    texts = [f"text {i} " + " ".join(r) for i, r in enumerate(rows)]
    if layout == "list":
        pq.write_table(pa.table({"id": ids, "text": texts, "labels": rows}), folder / "d.parquet")
        return "d.parquet", []
    if layout == "delimited":
        df = pd.DataFrame({"id": ids, "text": texts, "tags": ["|".join(r) for r in rows]})
        df.to_csv(folder / "d.csv", index=False)
        return "d.csv", ["--label-column", "tags", "--label-sep", "|"]
    if layout == "ids+names":  # GoEmotions: TSV without header, ids "0,3", labels.txt
        (folder / "names.txt").write_text("\n".join(NAMES) + "\n")
        cells = [",".join(str(NAMES.index(x)) for x in r) for r in rows]
        lines = [f"{t}\t{c}\t{i}" for t, c, i in zip(texts, cells, ids)]
        (folder / "d.tsv").write_text("\n".join(lines) + "\n")
        flags = ["--header-names", "text,labels,id", "--label-sep", ",", "--label-names"]
        return "d.tsv", [*flags, "names.txt"]
    if layout == "indicator":
        df = pd.DataFrame({"id": ids, "text": texts})
        for name in NAMES:
            df[f"y_{name}"] = [int(name in r) for r in rows]
        df.to_csv(folder / "d.csv", index=False)
        return "d.csv", ["--label-prefix", "y_"]
    raise AssertionError(layout)


def run(*argv: object) -> int:
    return cli.main([str(a) for a in argv])


def _by_id(path: Path) -> dict[str, set[str]]:
    t = pq.read_table(path)
    labels_col = "labels" if "labels" in t.column_names else "tags"
    return {
        i: set(r)
        for i, r in zip(t.column("id").to_pylist(), t.column(labels_col).to_pylist())
        if i is not None
    }


def _check_written(path: Path, root: Path, vocabulary: list[str] = NAMES) -> None:
    """The label column is a list of names; the metadata names no file and no local path."""
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    for f in files:
        meta = read_metadata(f)
        assert meta is not None and meta["labels"] == vocabulary
        spec = meta["label_spec"]
        assert "names_file" not in spec and spec.get("sep") is None
        column = spec["column"]
        assert pq.read_schema(f).field(column).type == LABEL_TYPE
        raw = json.dumps(meta)
        assert str(root) not in raw and "names.txt" not in raw
        values = {x for r in pq.read_table(f).column(column).to_pylist() if r for x in r}
        assert values <= set(NAMES)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    try:
        from mlbalance.train.tiny import make_tiny_model
    except ImportError:  # pragma: no cover - no torch/transformers
        return None
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return make_tiny_model(folder, [f"text {i} " + " ".join(NAMES) for i in range(50)])


@pytest.mark.parametrize("layout", ["list", "delimited", "ids+names", "indicator"])
def test_every_command_reads_the_output_from_elsewhere_without_flags(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path | None
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    name, flags = _write_input(a, layout)
    monkeypatch.chdir(a)  # relative paths, as a user types them
    want = {f"r{i}": set(r) for i, r in enumerate(_rows())}
    # the vocabulary: sorted names, or the names file's / the 0/1 columns' order
    vocab = sorted(NAMES) if layout in ("list", "delimited") else NAMES
    assert run("split", name, *flags, "--out", "split", "--ratios", "0.5,0.5") == 0
    _check_written(a / "split", tmp_path, vocab)
    assert {**_by_id(a / "split" / "train.parquet"), **_by_id(a / "split" / "test.parquet")} == want

    monkeypatch.chdir(b)  # another working directory, no label flag
    train = Path("..") / "a" / "split" / "train.parquet"
    assert run("analyse", train, "--json", "report.json") == 0
    report = json.loads(Path("report.json").read_text())
    assert [r["label"] for r in report["per_label"]] == vocab
    assert run("split", train, "--out", "s2", "--ratios", "0.5,0.5") == 0
    _check_written(b / "s2", tmp_path, vocab)
    assert run("resample", train, "--method", "ml-ros", "--out", "ros", "--seed", "1") == 0
    _check_written(b / "ros", tmp_path, vocab)
    assert run("verify", "ros") == 0
    assert run("resample", train, "--method", "remedial", "--out", "rem") == 0
    assert run("verify", "rem") == 0
    assert run("prepare", train, "--method", "ml-ros", "--out", "prep") == 0
    for part in ("train", "val", "test"):
        _check_written(b / "prep" / part, tmp_path, vocab)
    assert run("verify", Path("prep") / "train") == 0
    # every output reads back to the labels of the rows it holds
    for out in (b / "s2" / "train.parquet", b / "ros", b / "prep" / "val"):
        got = read_labels(out)
        assert got.names == tuple(vocab)
        ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
        assert [set(r) for r in got.to_lists()] == [want[i] for i in ids]
    if tiny_model is not None:
        assert (
            run("embed", train, "--model", tiny_model, "--out", "e.parquet", "--device", "cpu") == 0
        )
        _check_written(b / "e.parquet", tmp_path, vocab)
        assert read_labels("e.parquet").names == tuple(vocab)


def _mulan(folder: Path) -> Path:
    """A tiny MULAN dataset: 3 numeric features, nominal {0,1} labels, XML label file."""
    rng = np.random.default_rng(1)
    lines = ["@relation tiny", *(f"@attribute f{j} numeric" for j in range(3))]
    lines += [f"@attribute {n} {{0,1}}" for n in NAMES] + ["@data"]
    rows = _rows(120)
    for r in rows:
        feats = ",".join(f"{v:.3f}" for v in rng.normal(size=3))
        lines.append(feats + "," + ",".join("1" if n in r else "0" for n in NAMES))
    (folder / "tiny.arff").write_text("\n".join(lines) + "\n")
    xml = "".join(f'<label name="{n}"/>' for n in NAMES)
    (folder / "tiny.xml").write_text(
        f'<labels xmlns="http://mulan.sourceforge.net/labels">{xml}</labels>'
    )
    return folder / "tiny.arff"


def test_arff_to_names_and_mlsmote_on_its_features(tmp_path: Path, monkeypatch) -> None:
    arff = _mulan(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run("split", arff.name, "--out", "split", "--ratios", "0.5,0.5") == 0
    _check_written(tmp_path / "split", tmp_path)
    # MLSMOTE on the ARFF's own features, from the CLI, and on named feature columns
    assert run("resample", arff.name, "--method", "mlsmote", "--k", "3", "--out", "sm") == 0
    got = pd.read_parquet("sm")
    syn = got[got["synthetic"]]
    assert len(syn) > 0 and syn[["f0", "f1", "f2"]].notna().all().all()
    _check_written(tmp_path / "sm", tmp_path)
    train = Path("split") / "train.parquet"
    assert run("resample", train, "--method", "mlsmote", "--feature-prefix", "f", "--out", "p") == 0
    assert run("resample", train, "--method", "mlsmote", "--feature-columns", "f0,f2",
               "--out", "c") == 0  # fmt: skip
    c = pd.read_parquet("c")
    s = c[c["synthetic"]]
    assert s["f1"].isna().all() and s["f0"].notna().all() and s["f2"].notna().all()
    assert run("verify", "c") == 0


def _folder_readers(folder: Path, tmp_path: Path) -> list[pd.DataFrame]:
    frames = [
        pd.read_parquet(folder),
        pq.read_table(folder).to_pandas(),
        pads.dataset(folder, format="parquet").to_table().to_pandas(),
    ]
    datasets = pytest.importorskip("datasets")
    # datasets maps train/val/test file names to its splits: take them all
    hf = datasets.load_dataset("parquet", data_dir=str(folder), cache_dir=str(tmp_path / "hf"))
    frames.append(pd.concat([part.to_pandas() for part in hf.values()]))
    return frames


def test_other_readers_read_split_and_resample_folders(tmp_path: Path) -> None:
    _write_input(tmp_path, "ids+names")
    spec = ["--header-names", "text,labels,id", "--label-sep", ",", "--label-names"]
    src = tmp_path / "d.tsv"
    names = tmp_path / "names.txt"
    assert run("split", src, *spec, names, "--out", tmp_path / "split") == 0
    assert run("resample", src, *spec, names, "--method", "ml-ros", "--out", tmp_path / "ros") == 0
    assert (tmp_path / "split" / "__mlbalance__/split_report.json").is_file()
    assert (tmp_path / "ros" / "__mlbalance__/manifest.json").is_file()
    for folder, rows in ((tmp_path / "split", 240), (tmp_path / "ros", None)):
        for frame in _folder_readers(folder, tmp_path):
            assert rows is None or len(frame) == rows
            labels = {x for r in frame["labels"] for x in r}
            assert labels <= set(NAMES) and "neutral" in labels  # names, not "2"


def test_metadata_never_names_a_file(tmp_path: Path, capsys) -> None:
    """A names_file in a file's metadata (here /etc/passwd) is never opened."""
    meta = {"labels": ["x", "y"], "label_spec": {"column": "labels", "sep": ",",
                                                  "names_file": "/etc/passwd"}}  # fmt: skip
    t = pa.table({"labels": ["0,1", "1", *["0"] * 8]}).replace_schema_metadata(
        {b"mlbalance": json.dumps(meta).encode()}
    )
    evil = tmp_path / "evil.parquet"
    pq.write_table(t, evil)
    assert read_labels(evil).to_lists() == [["x", "y"], ["y"], *[["x"]] * 8]
    assert run("analyse", evil) == 0
    out_text = capsys.readouterr().out
    assert "root:" not in out_text and "/bin/" not in out_text  # no /etc/passwd line
    out = tmp_path / "ros"
    assert run("resample", evil, "--method", "ml-ros", "--out", out) == 0
    manifest = json.loads((out / "__mlbalance__/manifest.json").read_text())
    assert manifest["labels"] == ["x", "y"] and "root:" not in json.dumps(manifest)
    bad = pa.table({"labels": ["0,5"]}).replace_schema_metadata(
        {b"mlbalance": json.dumps(meta).encode()}
    )
    pq.write_table(bad, evil)
    assert run("analyse", evil) == 2
    assert "label id 5 is outside the 2 names of the stored label vocabulary" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "shard",
    ["../secret.parquet", "/etc/passwd", "/proc/self/environ", "sub/part.parquet", "..", ""],
)
def test_verify_reads_nothing_outside_the_folder(shard: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": list(range(60)), "labels": _rows(60)}), src)
    out = tmp_path / "ros"
    assert run("resample", src, "--method", "ml-ros", "--out", out) == 0
    (tmp_path / "secret.parquet").write_bytes(b"secret")
    manifest = json.loads((out / "__mlbalance__/manifest.json").read_text())
    manifest["shards"][0]["file"] = shard
    manifest["shards"][0]["sha256"] = hashlib.sha256(b"secret").hexdigest()
    (out / "__mlbalance__/manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run("verify", out) == 2
    err = capsys.readouterr().err
    assert "not a plain .parquet file name" in err and err.count("\n") == 1
    assert hashlib.sha256(b"secret").hexdigest()[:12] not in err


def test_verify_refuses_a_symlinked_shard(tmp_path: Path, capsys) -> None:
    src = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": list(range(60)), "labels": _rows(60)}), src)
    out = tmp_path / "ros"
    assert run("resample", src, "--method", "ml-ros", "--out", out) == 0
    shard = next(out.glob("*.parquet"))
    shard.rename(tmp_path / "elsewhere.parquet")
    shard.symlink_to(tmp_path / "elsewhere.parquet")
    assert run("verify", out) == 1
    assert "symbolic link" in capsys.readouterr().out


def test_folders_written_by_mlbalance_0_1_still_read(tmp_path: Path) -> None:
    """manifest.json, split_report.json and id cells with a names-file path in the metadata."""
    names = NAMES
    rows = _rows(50)
    cells = [",".join(str(names.index(x)) for x in r) for r in rows]
    meta = {
        "labels": names,
        "label_spec": {"column": "labels", "sep": ",", "names_file": "../gone/labels.txt"},
    }
    table = pa.table({"text": [f"t{i}" for i in range(50)], "labels": cells})
    old = tmp_path / "old"
    old.mkdir()
    shard = old / "part-00000-of-00001.parquet"
    pq.write_table(table.replace_schema_metadata({b"mlbalance": json.dumps(meta).encode()}), shard)
    counts = {n: sum(n in r for r in rows) for n in names}
    manifest = {
        "format": "mlbalance-shards/1",
        "labels": names,
        "label_spec": meta["label_spec"],
        "rows": 50,
        "method": "ml-ros",
        "label_counts_after": counts,
        "shards": [
            {
                "file": shard.name,
                "rows": 50,
                "sha256": hashlib.sha256(shard.read_bytes()).hexdigest(),
                "bytes": shard.stat().st_size,
            }
        ],
    }
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert run("verify", old) == 0
    assert [set(r) for r in read_labels(old).to_lists()] == [set(r) for r in rows]
    assert run("split", old, "--out", tmp_path / "new", "--ratios", "0.5,0.5") == 0
    _check_written(tmp_path / "new", tmp_path)


def test_write_parquet_writes_names_whatever_the_layout(tmp_path: Path) -> None:
    """The writer predict calls: ids with the stored vocabulary, 0/1 columns, delimited."""
    legacy = LabelSpec.from_dict({"column": "labels", "sep": ",", "names_file": "/etc/passwd"})
    assert legacy.names_file is None and legacy.ids_index_vocabulary
    table = pa.table({"labels": ["0,2", "1", ""], "scores": [0.1, 0.2, 0.3]})
    p = tmp_path / "p.parquet"
    write_parquet(table, p, labels=["a", "b", "c"], spec=legacy)
    t = pq.read_table(p)
    assert t.column("labels").to_pylist() == [["a", "c"], ["b"], []]
    assert t.column_names == ["labels", "scores"]
    ind = pa.table({"x": [1, 2], "y_a": [1, 0], "y_b": [1, 1]})
    write_parquet(ind, p, labels=["a", "b"], spec=LabelSpec(prefix="y_"))
    t = pq.read_table(p)
    assert t.column_names == ["x", "labels"] and t.column("labels").to_pylist() == [
        ["a", "b"],
        ["b"],
    ]
    assert read_labels(p).to_lists() == [["a", "b"], ["b"]]
