"""The trainer keeps the charter: no silent no-ops, real reasons, one-line failures, truth.

Each test here failed before the behaviour it checks was built: the recorded recipe, the
sampler's epoch growth, threshold fallbacks grouped by the tuner's reasons, a core install
without torch, a progress bar that knows ``max_steps``, an embedding head that wrote no
tokenizer, a full disk and hostile weight files.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.cli import main  # noqa: E402
from mlbalance.errors import MlbalanceError  # noqa: E402
from test_train import emb_config, run_train, write_embedding_splits  # noqa: E402

# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def emb(tmp_path_factory) -> dict[str, Path]:
    return write_embedding_splits(tmp_path_factory.mktemp("emb"))


def _train_argv(emb: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--train", str(emb["train"]), "--val", str(emb["val"]), "--out", str(out),
            "--epochs", "1", "--head-lr", "0.05", *extra]  # fmt: skip


def _one_error_line(err: str) -> str:
    """The error line: the last on stderr, the only error, no traceback (log lines may precede)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("mlbalance: error: ")]
    assert errors == lines[-1:] and "Traceback" not in err, err[-2000:]
    assert not any(line.startswith("mlbalance: warning") for line in lines), err[-2000:]
    return errors[0]


# ----------------------------------------------------------------------------- recipes
def test_library_and_cli_record_the_same_resolved_recipe(emb, tmp_path, capsys):
    from mlbalance.train.config import TrainConfig
    from mlbalance.train.trainer import train

    kw = {"train": str(emb["train"]), "val": str(emb["val"]), "epochs": 1, "head_lr": 0.05}
    train(TrainConfig(**kw, out=str(tmp_path / "lib"), recipe="long-tail"), log=lambda s: None)
    assert main(_train_argv(emb, tmp_path / "cli", "--recipe", "long-tail")) == 0
    lib = json.loads((tmp_path / "lib" / "training_args.json").read_text())
    cli = json.loads((tmp_path / "cli" / "training_args.json").read_text())
    assert lib["sampler"] == "class-aware" and lib["threshold_smoothing"] == 30.0
    assert lib["recipe_presets"] == {"sampler": "class-aware", "threshold_smoothing": 30.0}
    lib.pop("out"), cli.pop("out")
    assert lib == cli
    # no machine-local path in the model folder
    assert lib["train"] == "train.parquet" and str(tmp_path) not in json.dumps(lib)
    metrics = (tmp_path / "cli" / "metrics.json").read_text()
    assert str(tmp_path) not in metrics


def test_a_recipe_that_changes_nothing_says_so(emb, tmp_path):
    cfg = emb_config(emb, tmp_path / "m", epochs=1, recipe="long-tail", sampler="none",
                     threshold_smoothing=0.0)  # fmt: skip
    _, lines = run_train(cfg)
    assert any("recipe long-tail changes nothing" in line for line in lines)


# ----------------------------------------------------------------------------- sampler
def test_summary_says_the_sampler_epoch_growth(emb, tmp_path, capsys):
    assert main(_train_argv(emb, tmp_path / "m", "--sampler", "repeat-factor",
                            "--rfs-threshold", "0.2")) == 0  # fmt: skip
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "rows per epoch expected" in x)
    assert (
        line.startswith("  sampler repeat-factor (threshold 0.2") and "x the 540 input rows" in line
    )
    summary = json.loads((tmp_path / "m" / "metrics.json").read_text())["data"]["sampler"]
    assert summary["growth"] > 1.0 and summary["input_rows"] == 540
    assert main(_train_argv(emb, tmp_path / "auto", "--sampler", "repeat-factor",
                            "--rfs-threshold", "auto")) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "sampler repeat-factor (threshold auto = 0." in out  # the threshold the sampler chose


def test_a_repeat_threshold_that_repeats_no_row_is_reported(emb, tmp_path, capsys):
    # every label of this data is on >= 4% of the rows: t = 0.001 repeats nothing
    assert main(_train_argv(emb, tmp_path / "m", "--sampler", "repeat-factor",
                            "--rfs-threshold", "0.001")) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "1.00x the 540 input rows" in captured.out
    assert (
        "sampler warning:" in captured.out and "repeat" in captured.out.split("sampler warning:")[1]
    )


# ----------------------------------------------------------------------------- thresholds
def test_threshold_fallbacks_are_grouped_by_the_tuners_reasons():
    from mlbalance.cli.train import _threshold_lines
    from mlbalance.train.model_folder import TrainResult

    fallback = {
        "a": "1 positive(s) in validation (< min_positives=3): global threshold",
        "b": "2 positive(s) in validation (< min_positives=3): global threshold",
        "c": "its F1-best threshold fired on over 12 validation rows: raised to 0.43 so it "
        "fires on at most 12 validation rows",
        "d": "no positives in validation: global threshold",
    }
    result = TrainResult(Path("m"), list("abcde"), [], 1, 0.5, {}, fallback, False, 1.0, 1.0, {})
    groups = result.fallback_groups()
    assert groups[0] == (
        "1-2 positive(s) in validation (< min_positives=3): global threshold",
        ["a", "b"],
    )
    assert {g[0] for g in groups[1:]} == {fallback["c"], fallback["d"]}

    class Cfg:
        threshold_mode = "f1"

    text = "\n".join(_threshold_lines(result, Cfg()))
    assert "4 of 5 label(s)" in text
    assert "fired on over 12 validation rows" in text and "too few" not in text


# ----------------------------------------------------------------------------- core install
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--train", "t.parquet", "--val", "v.parquet", "--out", "o"],
        ["evaluate", "--model", "m", "--data", "d.parquet"],
        ["predict", "--model", "m", "--data", "d.parquet", "--out", "p.parquet"],
        ["embed", "d.parquet", "--model", "m", "--out", "e.parquet"],
        ["demo", "--out", "demo-out"],
    ],
    ids=lambda a: a[0],
)
def test_a_core_install_names_the_extra_to_install(argv, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for module in ("torch", "transformers"):
        monkeypatch.setitem(sys.modules, module, None)  # import torch -> ModuleNotFoundError
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert 'pip install "mlbalance[train]"' in line and "'torch'" in line
    assert not (tmp_path / "demo-out").exists()  # the demo stopped before its first stage


def test_a_missing_module_deep_in_a_command_is_one_line(monkeypatch, capsys):
    import mlbalance.cli.train as train_cli

    def run(cfg, **kw):
        raise ModuleNotFoundError("No module named 'transformers'", name="transformers")

    monkeypatch.setattr("mlbalance.train.trainer.train", run)
    assert train_cli.run is not None
    assert main(["train", "--train", "t", "--val", "v", "--out", "o"]) == 2
    assert "'transformers' is not installed" in _one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- progress
def test_progress_bar_counts_the_batches_max_steps_will_run(emb, tmp_path, monkeypatch):
    import mlbalance._progress as progress

    bars = []

    class Bar:
        n = 0

        def update(self, k=1):
            self.n += k

        def set_postfix(self, **kw):
            pass

        def close(self):
            pass

    def recording_bar(**kw):
        bars.append((kw, Bar()))
        return bars[-1][1]

    monkeypatch.setattr(progress, "progress_bar", recording_bar)
    run_train(emb_config(emb, tmp_path / "m", epochs=3, batch_size=32, max_steps=4))
    assert len(bars) == 1  # 17 batches per epoch: the 4 steps end in epoch 1
    kw, bar = bars[0]
    assert kw["desc"] == "epoch 1/1" and kw["total"] == 4 and bar.n == 4


def test_batches_to_run_with_accumulation_and_resume():
    from mlbalance.train.loop import batches_to_run

    assert batches_to_run(17, 0, 1, None) == 17
    assert batches_to_run(17, 0, 1, 4) == 4
    assert batches_to_run(17, 0, 2, 3) == 6  # steps close at batches 2, 4, 6
    assert batches_to_run(17, 6, 2, 100) == 11  # resumed at batch 6: the rest of the epoch
    assert batches_to_run(17, 0, 4, 5) == 17  # the 5th step closes at the epoch's last batch
    assert batches_to_run(17, 4, 1, 0) == 0


# ----------------------------------------------------------------------------- the folder
def test_an_embedding_head_run_lists_the_files_it_wrote(emb, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(_train_argv(emb, out)) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "tokenizer" not in last and "head.safetensors" in last
    assert sorted(last.split(" -> ")[0].strip().split(", ")) == sorted(
        p.name for p in out.iterdir()
    )


# ----------------------------------------------------------------------------- failures
def test_a_full_disk_is_one_line_and_leaves_nothing(emb, tmp_path, monkeypatch, capsys):
    import errno

    import safetensors.torch
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save_model", full)  # the checkpoint's writer
    out = tmp_path / "m"
    assert main(_train_argv(emb, out)) != 0
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "m.ckpt/best" in line
    assert not out.exists()
    monkeypatch.undo()

    real = safetensors.torch.save_file

    def broken(tensors, filename, *args, **kwargs):
        if filename.endswith("head.safetensors"):  # the model folder's writer
            raise SafetensorError("Error while serializing: IoError(Os { code: 28 })")
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    assert main(_train_argv(emb, out)) != 0
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot write" in line and "head.safetensors" in line and "IoError" in line
    assert not out.exists() and not list(tmp_path.glob(".m.*"))


class _Payload:
    """A pickle that would run a command when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=2)  # torch.save's protocol


def test_hostile_weight_files_are_refused_in_one_line(emb, tmp_path, capsys):
    ckpt, marker = tmp_path / "ckpt", tmp_path / "PWNED"
    argv = _train_argv(emb, tmp_path / "a", "--checkpoint-dir", str(ckpt), "--keep-checkpoints")
    assert main(argv) == 0
    capsys.readouterr()
    (ckpt / "last" / "optimizer.pt").write_bytes(_hostile(marker))
    resume = _train_argv(emb, tmp_path / "b", "--checkpoint-dir", str(ckpt), "--resume",
                         "--epochs", "2")  # fmt: skip
    assert main(resume) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "optimizer.pt: refused to load" in line and "GLOBAL posix.system" in line
    assert "weights_only=False" not in line and not marker.exists()
    (ckpt / "last" / "model.safetensors").write_bytes(_hostile(marker))
    assert main(resume) == 2
    assert "model.safetensors: not a readable weight file" in _one_error_line(
        capsys.readouterr().err
    )
    (tmp_path / "a" / "head.safetensors").write_bytes(_hostile(marker))
    assert main(["evaluate", "--model", str(tmp_path / "a"), "--data", str(emb["test"])]) == 2
    assert "head.safetensors: not a readable weight file" in _one_error_line(
        capsys.readouterr().err
    )
    assert not marker.exists()


def test_library_write_failure_is_an_mlbalance_error(tmp_path):
    from mlbalance.train.weights import writing

    def fail():
        raise PermissionError(13, "Permission denied")

    with pytest.raises(MlbalanceError, match=r"cannot write x\.bin: Permission denied"):
        writing("x.bin", fail)
