"""k-fold training: ``mlbalance train --folds DIR`` and :func:`mlbalance.train.folds.train_folds`."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mlbalance.errors import InputError, ParameterError  # noqa: E402
from mlbalance.io import LabelSpec, write_parquet  # noqa: E402

OPTIONS = {
    "epochs": 1,
    "batch_size": 32,
    "head_lr": 0.05,
    "warmup_ratio": 0.0,
    "threshold_cv": 2,
    "seed": 3,
}


# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folds_dir(tmp_path_factory) -> Path:
    """A 4-fold split of learnable embedding rows (6 labels)."""
    from mlbalance.split.files import split_to_folder
    from test_train import embedding_table

    root = tmp_path_factory.mktemp("folds")
    table, names = embedding_table(320, 6, 8, 0)
    write_parquet(table, root / "all.parquet", labels=names, spec=LabelSpec())
    split_to_folder(root / "all.parquet", root / "folds", folds=4, seed=0)
    return root / "folds"


@pytest.fixture(scope="module")
def trained(folds_dir, tmp_path_factory):
    from mlbalance.train.folds import train_folds

    out = tmp_path_factory.mktemp("cv") / "out"
    return train_folds(folds_dir, out, OPTIONS, log=lambda s: None, progress=False)


def _without_timings(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "seconds"}


def test_one_folder_per_fold_and_summary(trained):
    out = trained.out
    assert sorted(p.name for p in out.iterdir()) == [
        "fold-0",
        "fold-1",
        "fold-2",
        "fold-3",
        "folds.json",
    ]
    for k in range(4):
        assert (out / f"fold-{k}" / "thresholds.json").is_file()
    doc = json.loads((out / "folds.json").read_text())
    assert doc["n_folds"] == 4 and "ddof=1" in doc["std"]
    # the scheme: test = fold k, val = fold k+1, train = the other two
    f1 = doc["folds"][1]
    assert (f1["test"], f1["val"]) == ("fold-1.parquet", "fold-2.parquet")
    assert f1["train"] == ["fold-0.parquet", "fold-3.parquet"]
    assert doc["folds"][3]["val"] == "fold-0.parquet"
    args = json.loads((out / "fold-1" / "training_args.json").read_text())
    assert args["train"] == ["fold-0.parquet", "fold-3.parquet"]  # names only, no paths
    assert trained.results[1].data["train_rows"] == 160
    for key in ("micro_f1", "macro_f1", "macro_map"):
        values = [f["metrics"]["test"][key] for f in doc["folds"]]
        s = doc["summary"]["test"][key]
        assert s["n"] == 4
        assert s["mean"] == pytest.approx(sum(values) / 4, abs=1e-12)
        assert s["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        assert values == [r.metrics["test"][key] for r in trained.results]
    assert 0.5 < doc["summary"]["test"]["micro_f1"]["mean"] <= 1  # the heads learn


def test_summarise_sample_std():
    from mlbalance.train.folds import summarise

    s = summarise([1.0, 2.0, None, 4.0])
    assert s["n"] == 3 and s["mean"] == pytest.approx(7 / 3)
    assert s["std"] == pytest.approx(
        math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    )
    assert summarise([0.5])["std"] is None and summarise([None])["mean"] is None


def test_deterministic_and_cli_from_another_cwd(trained, folds_dir, tmp_path, monkeypatch, capsys):
    from mlbalance.cli import main

    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    code = main(["train", "--folds", str(folds_dir), "--out", "cv", *flags, "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)  # stdout is JSON only
    assert "mean ± std" in captured.err and "fold 4/4" in captured.err
    assert (work / "cv" / "fold-3").is_dir()
    mine = json.loads((work / "cv" / "folds.json").read_text())
    theirs = json.loads((trained.out / "folds.json").read_text())
    assert report == mine
    mine.pop("out"), theirs.pop("out")
    assert _without_timings(mine) == _without_timings(theirs)  # library and CLI agree


def test_same_seed_same_bytes(folds_dir, tmp_path):
    from mlbalance.train.folds import train_folds

    docs = []
    for overwrite in (False, True):  # the second run replaces the first one's folder
        train_folds(
            folds_dir, tmp_path / "a", OPTIONS, overwrite=overwrite, log=lambda s: None,
            progress=False,
        )  # fmt: skip
        docs.append(_without_timings(json.loads((tmp_path / "a" / "folds.json").read_text())))
    assert json.dumps(docs[0]) == json.dumps(docs[1])
    assert sorted(p.name for p in (tmp_path / "a").iterdir())[:4] == [f"fold-{k}" for k in range(4)]


def test_errors(folds_dir, tmp_path, trained, capsys):
    from mlbalance.cli import main
    from mlbalance.train.folds import train_folds

    assert main(["train", "--folds", str(folds_dir), "--train", "x.parquet", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--folds cannot be combined with --train" in err
    with pytest.raises(ParameterError, match="cannot be combined with val"):
        train_folds(folds_dir, tmp_path / "o", {"val": "v.parquet"})
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--folds", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds no fold files" in err and "mlbalance split" in err
    two = tmp_path / "two"
    two.mkdir()
    for k in range(2):
        (two / f"fold-{k}.parquet").write_bytes((folds_dir / f"fold-{k}.parquet").read_bytes())
    with pytest.raises(InputError, match="holds 2 fold"):
        train_folds(two, tmp_path / "o", OPTIONS)
    # a fold with another vocabulary
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k in range(3):
        (mixed / f"fold-{k}.parquet").write_bytes((folds_dir / f"fold-{k}.parquet").read_bytes())
    import pyarrow as pa

    write_parquet(
        pa.table({"embedding": [[0.0] * 8], "labels": [["other"]]}),
        mixed / "fold-3.parquet",
        labels=["other"],
        spec=LabelSpec(),
    )
    assert main(["train", "--folds", str(mixed), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "label vocabulary differs" in err
    with pytest.raises(InputError, match="vocabulary differs"):
        train_folds(mixed, tmp_path / "o", OPTIONS)
    # a non-empty output is refused without overwrite
    with pytest.raises(ParameterError, match="not empty"):
        train_folds(folds_dir, trained.out, OPTIONS)
    assert not (tmp_path / "o").exists()


def test_bad_option_is_refused_before_anything_is_written(folds_dir, tmp_path, capsys):
    from mlbalance.cli import main
    from mlbalance.train.folds import train_folds

    with pytest.raises(ParameterError, match="epochs"):
        train_folds(folds_dir, tmp_path / "o", {**OPTIONS, "epochs": 0})
    assert not (tmp_path / "o").exists()
    assert main(["train", "--folds", str(folds_dir), "--out", str(tmp_path / "o"),
                 "--epochs", "0"]) == 2  # fmt: skip
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "--epochs" in captured.err  # no "fold 1/4" line
    assert not (tmp_path / "o").exists()


def test_overwrite_replaces_the_whole_output(trained, folds_dir, tmp_path):
    """A 3-fold run over a 4-fold output leaves no fold-3 behind; results point at out."""
    from mlbalance.train.folds import train_folds

    three = tmp_path / "three"
    three.mkdir()
    for k in range(3):
        (three / f"fold-{k}.parquet").write_bytes((folds_dir / f"fold-{k}.parquet").read_bytes())
    out = tmp_path / "cv"
    train_folds(folds_dir, out, OPTIONS, log=lambda s: None, progress=False)
    assert (out / "fold-3").is_dir()
    result = train_folds(three, out, OPTIONS, overwrite=True, log=lambda s: None, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["fold-0", "fold-1", "fold-2", "folds.json"]
    assert [r.out for r in result.results] == [out / f"fold-{k}" for k in range(3)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_config_file_and_flags_merge_as_in_plain_train(folds_dir, tmp_path):
    """--loss-params keys join the --config file's, as TrainConfig.from_file merges them."""
    from mlbalance.cli import main

    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({**OPTIONS, "loss": "focal", "loss_params": {"gamma": 3}}))
    out = tmp_path / "cv"
    argv = ["train", "--folds", str(folds_dir), "--config", str(conf), "--out", str(out),
            "--loss-params", "alpha=0.5"]  # fmt: skip
    assert main(argv) == 0
    args = json.loads((out / "fold-0" / "training_args.json").read_text())
    assert args["loss_params"] == {"gamma": 3, "alpha": 0.5}


def test_options_as_a_train_config(trained, folds_dir, tmp_path):
    from mlbalance.train.config import TrainConfig
    from mlbalance.train.folds import train_folds

    cfg = TrainConfig(train="x.parquet", val="y.parquet", out="z", **OPTIONS)
    result = train_folds(folds_dir, tmp_path / "out", cfg, log=lambda s: None, progress=False)
    assert result.summary == trained.summary  # the data paths are replaced, the rest kept


def test_several_train_files_read_as_one_split(tmp_path):
    from mlbalance.train.data import load_split
    from test_train import write_text_splits

    paths = write_text_splits(tmp_path, n_rows=100)
    one = [load_split(str(paths[s])) for s in ("train", "val")]
    both = load_split([str(paths["train"]), str(paths["val"])])
    assert both.n_rows == one[0].n_rows + one[1].n_rows == 80
    assert both.texts.to_pylist() == one[0].texts.to_pylist() + one[1].texts.to_pylist()
    assert both.labels.to_lists() == one[0].labels.to_lists() + one[1].labels.to_lists()
    assert both.source == f"{paths['train']} + {paths['val']}"
    # a file with large_string texts (as polars writes them) joins one with plain strings
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlbalance.io import read_metadata

    big = tmp_path / "large.parquet"
    table = pq.read_table(paths["val"])
    large = table.set_column(
        table.schema.get_field_index("text"), "text", table.column("text").cast(pa.large_string())
    )
    write_parquet(large, big, labels=read_metadata(paths["val"])["labels"], spec=LabelSpec())
    mixed = load_split([str(paths["train"]), str(big)])
    assert mixed.texts.to_pylist() == both.texts.to_pylist()


def test_train_refuses_a_plot_path_before_training(tmp_path, capsys):
    """--plot onto an input, or into a missing folder: one line, nothing trained or touched."""
    from mlbalance.cli import main
    from test_train import write_embedding_splits

    data = write_embedding_splits(tmp_path, n_rows=60)
    before = data["train"].read_bytes()
    base = ["train", "--train", str(data["train"]), "--val", str(data["val"]),
            "--out", str(tmp_path / "m"), "--epochs", "1"]  # fmt: skip
    assert main([*base, "--plot", str(data["train"])]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert data["train"].read_bytes() == before and not (tmp_path / "m").exists()
    assert main([*base, "--plot", str(tmp_path / "nowhere" / "p.png")]) == 2
    assert "--plot" in (err := capsys.readouterr().err) and "does not exist" in err
    assert not (tmp_path / "m").exists()


def test_a_split_report_naming_a_path_outside_the_folder_is_refused(folds_dir, tmp_path):
    """fold_files reads only plain file names from the split report, as manifests are read."""
    import shutil

    from mlbalance.split.files import REPORT_NAME, fold_files

    copy = tmp_path / "folds"
    shutil.copytree(folds_dir, copy)
    report = copy / REPORT_NAME
    doc = json.loads(report.read_text())
    doc["files"]["fold-0"] = "../../secret.parquet"
    report.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"fold file '\.\./\.\./secret\.parquet' is not a plain"):
        fold_files(copy)
