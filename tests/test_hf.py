"""mlbalance.hf.MultilabelTrainer with the real transformers Trainer, on a tiny BERT on CPU.

A few optimizer steps each: the sampler the Trainer draws with is mlbalance's, the loss is
the chosen mlbalance loss, the output bias starts at the label priors, evaluation tunes the
thresholds ThresholdTuner gives on the eval scores and saving writes them as
``thresholds.json`` (read back by ``load_predictor``), the metrics have the bucket keys, and
bad options are one ParameterError naming the option.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

from mlbalance.errors import ParameterError  # noqa: E402
from mlbalance.hf import MultilabelTrainer, label_matrix, load_split  # noqa: E402
from mlbalance.io import LabelSpec, write_parquet  # noqa: E402

N_LABELS = 12


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    yield
    torch.set_num_threads(before)
    datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tokenised train/val splits with head, medium and tail labels, and a tiny BERT."""
    from mlbalance.synth import label_names, make_synthetic_table
    from mlbalance.train.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("hf")
    table = make_synthetic_table(
        700, N_LABELS, 0, words_per_row=8, head_fraction=0.35, tail_count=6
    )
    names = label_names(N_LABELS)
    folder = root / "splits"
    folder.mkdir()
    for split, (start, stop) in {"train": (0, 500), "val": (500, 700)}.items():
        write_parquet(
            table.slice(start, stop - start), folder / f"{split}.parquet", labels=names,
            spec=LabelSpec(),
        )  # fmt: skip
    splits = load_split(folder)
    tiny = make_tiny_model(root / "tiny", list(splits["train"]["text"]), hidden_size=16,
                           num_layers=1, num_heads=2)  # fmt: skip
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny))
    encoded = splits.map(lambda b: tokenizer(b["text"], truncation=True, max_length=24),
                         batched=True)  # fmt: skip
    return {"root": root, "tiny": tiny, "tokenizer": tokenizer, "data": encoded, "names": names}


def _model(setup, n_labels=N_LABELS):
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        str(setup["tiny"]), num_labels=n_labels
    )


def _args(out: Path, **kw):
    base = {
        "max_steps": 4, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64,
        "learning_rate": 1e-3, "report_to": [], "use_cpu": True, "seed": 0,
        "save_strategy": "no", "logging_strategy": "no", "disable_tqdm": True,
    }  # fmt: skip
    return transformers.TrainingArguments(str(out), **{**base, **kw})


def _trainer(setup, out, *, args=None, model=None, **kw):
    return MultilabelTrainer(
        model=model or _model(setup), args=args or _args(out),
        train_dataset=setup["data"]["train"], eval_dataset=setup["data"]["val"],
        processing_class=setup["tokenizer"], **kw,
    )  # fmt: skip


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def test_trainer_uses_mlbalance_sampler_loss_prior_and_saves_thresholds(setup, tmp_path):
    from mlbalance.samplers import RepeatFactorSampler
    from mlbalance.thresholds import ThresholdTuner
    from mlbalance.train import load_predictor
    from mlbalance.train.losses import FocalLoss, build_loss
    from mlbalance.train.model import prior_logits
    from mlbalance.train.model_folder import read_thresholds

    trainer = _trainer(setup, tmp_path / "run", loss="focal", loss_params={"gamma": 1.5},
                       rfs_threshold=0.3, max_length=24)  # fmt: skip
    y = label_matrix(setup["data"]["train"])
    counts = y.counts()
    # prior bias: the untrained output layer predicts each label's base rate
    bias = trainer.model.classifier.bias.detach().numpy()
    np.testing.assert_allclose(bias, prior_logits(counts, y.n_rows), rtol=1e-5)
    assert trainer.model.config.problem_type == "multi_label_classification"
    assert trainer.model.config.id2label[0] == setup["names"][0]

    # sampler: mlbalance's, with the factors of the train labels, and the one the loader draws
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, RepeatFactorSampler)
    want = RepeatFactorSampler(y, threshold=0.3, power=0.5)
    np.testing.assert_array_equal(sampler.factors, want.factors)
    assert sampler.factors.max() > 1  # it repeats rows
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.batch_sampler.sampler, RepeatFactorSampler)
    assert trainer.sampler_info_["growth"] > 1

    # loss: the focal loss on the batch's logits and multi-hot labels
    assert isinstance(trainer.loss_fn, FocalLoss)
    batch = next(iter(loader))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape[1] == N_LABELS
    trainer.model.eval()
    with torch.no_grad():
        got = trainer.compute_loss(trainer.model, batch)
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    focal = build_loss("focal", label_counts=counts, n_rows=y.n_rows, gamma=1.5)
    torch.testing.assert_close(got, focal(logits, batch["labels"]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
    assert not torch.allclose(got, bce)

    trainer.train()
    metrics = trainer.evaluate()
    for key in ("eval_micro_f1", "eval_macro_f1", "eval_micro_f1_at_0.5", "eval_macro_f1_at_0.5"):
        assert key in metrics
    for bucket in ("head", "medium", "tail"):
        assert f"eval_macro_f1_{bucket}" in metrics and f"eval_macro_recall_{bucket}" in metrics

    # thresholds: what ThresholdTuner (the mlbalance train defaults) gives on the eval scores
    predicted = trainer.predict(setup["data"]["val"])  # prefix "test": no re-tuning
    scores = _sigmoid(predicted.predictions)
    truth = label_matrix(setup["data"]["val"]).matrix
    tuner = ThresholdTuner(cv=5, guard="group", random_state=0).fit(scores, truth)
    np.testing.assert_allclose(trainer.thresholds_.thresholds, tuner.result_.thresholds)
    assert "test_macro_f1_tail" in predicted.metrics

    out = tmp_path / "model"
    trainer.save_model(str(out))
    saved = read_thresholds(out / "thresholds.json", setup["names"])
    np.testing.assert_allclose(saved, tuner.result_.thresholds)
    label_counts = json.loads((out / "label_counts.json").read_text())
    assert label_counts["counts"] == dict(zip(setup["names"], counts.tolist(), strict=True))
    predictor = load_predictor(out, device="cpu")
    np.testing.assert_allclose(predictor.thresholds, tuner.result_.thresholds)
    assert predictor.names == setup["names"]
    # how the texts were read and cut travels with the model (no machine-local path)
    saved_args = json.loads((out / "training_args.json").read_text())
    assert saved_args["max_length"] == 24 and saved_args["loss"] == "focal"
    assert predictor.max_length == 24 and predictor.text_column == "text"


def test_checkpoints_carry_thresholds_and_the_best_one_is_restored(setup, tmp_path):
    args = _args(
        tmp_path / "run", eval_strategy="steps", eval_steps=2, save_strategy="steps",
        save_steps=2, load_best_model_at_end=True, metric_for_best_model="macro_f1",
    )  # fmt: skip
    trainer = _trainer(setup, tmp_path / "run", args=args, sampler="class-aware")
    trainer.train()
    best = Path(trainer.state.best_model_checkpoint)
    assert (best / "thresholds.json").is_file()
    for ckpt in (tmp_path / "run").glob("checkpoint-*"):
        assert (ckpt / "thresholds.json").is_file() and (ckpt / "config.json").is_file()
    from mlbalance.train.model_folder import read_thresholds

    np.testing.assert_allclose(
        trainer.thresholds_.thresholds, read_thresholds(best / "thresholds.json", setup["names"])
    )


def test_sampler_none_is_the_trainers_own_and_ranks_shard_ours(setup, tmp_path, monkeypatch):
    from mlbalance.samplers import ClassAwareSampler

    plain = _trainer(setup, tmp_path, sampler=None, prior_bias=False)
    assert plain.options.sampler == "none"
    assert not type(plain._get_train_sampler()).__module__.startswith("mlbalance")
    assert plain.model.classifier.bias.abs().max() == 0  # no prior bias asked for

    trainer = _trainer(setup, tmp_path, recipe="long-tail")
    assert trainer.options.sampler == "class-aware" and trainer.options.threshold_smoothing == 30
    args_type = type(trainer.args)
    monkeypatch.setattr(args_type, "world_size", property(lambda self: 2))
    monkeypatch.setattr(args_type, "process_index", property(lambda self: 1))
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, ClassAwareSampler)
    assert (sampler.num_replicas, sampler.rank) == (2, 1)


def test_names_column_from_load_dataset(setup, tmp_path):
    """A label column of names (what load_dataset gives) with the vocabulary passed in."""
    names = setup["names"]
    decode = setup["data"]["train"].features["labels"].feature.int2str
    train = setup["data"]["train"].map(
        lambda b: {"tags": [[decode(i) for i in row] for row in b["labels"]]},
        batched=True, remove_columns=["labels"],
    )  # fmt: skip
    train = train.cast_column("tags", datasets.Sequence(datasets.Value("string")))
    trainer = MultilabelTrainer(
        model=_model(setup), args=_args(tmp_path), train_dataset=train,
        processing_class=setup["tokenizer"], label_names=names, label_column="tags",
        loss="weighted-bce", loss_params={"max_weight": 5},
    )  # fmt: skip
    assert trainer.coding.kind == "names" and trainer.label_names_ == names
    np.testing.assert_array_equal(
        trainer.train_labels_.counts(), label_matrix(setup["data"]["train"]).counts()
    )
    trainer.train()
    assert trainer.state.global_step == 4


def _with_unseen_label(dataset, names, rows=(0, 1), column="labels"):
    """*dataset* with the labels as names, and ``zz`` (a label train lacks) on *rows*."""
    decode = dataset.features["labels"].feature.int2str

    def to_names(batch, idx):
        return {"names": [[decode(i) for i in r] + (["zz"] if j in rows else [])
                          for r, j in zip(batch["labels"], idx, strict=True)]}  # fmt: skip

    out = dataset.map(to_names, batched=True, with_indices=True, remove_columns=["labels"])
    out = out.cast_column("names", datasets.Sequence(datasets.Value("string")))
    return out.rename_column("names", column)


def test_eval_labels_train_never_saw_are_left_out_with_one_warning(setup, tmp_path, caplog):
    """As mlbalance evaluate: one warning naming them and their rows, the batches without them
    (was an InputError from the collator at the first evaluation)."""
    names = setup["names"]
    val = setup["data"]["val"]
    truth = label_matrix(val).matrix.toarray()
    as_names = _with_unseen_label(val, names)
    with caplog.at_level("WARNING", logger="mlbalance.hf.trainer"):
        trainer = MultilabelTrainer(
            model=_model(setup), args=_args(tmp_path), train_dataset=setup["data"]["train"],
            eval_dataset={"val": as_names}, processing_class=setup["tokenizer"],
        )  # fmt: skip
        metrics = trainer.evaluate()
        got = trainer.predict(as_names)
    said = [r.getMessage() for r in caplog.records if "train never saw" in r.getMessage()]
    assert said == [
        "eval_dataset['val'] has 1 label(s) that train never saw, on 2 row(s) (left out of its "
        "batches and metrics): zz (2)"
    ]
    assert "eval_val_macro_f1" in metrics
    np.testing.assert_array_equal(got.label_ids, truth)  # names in the model's order
    # a ClassLabel column of another vocabulary is read through its names, not by position
    other = [*reversed(names), "zz"]
    relabelled = as_names.cast_column("labels", datasets.Sequence(datasets.ClassLabel(names=other)))
    np.testing.assert_array_equal(trainer.predict(relabelled).label_ids, truth)


def test_train_labels_outside_label_names_are_refused_at_construction(setup, tmp_path):
    from mlbalance.errors import InputError

    train = _with_unseen_label(setup["data"]["train"], setup["names"], rows=(3,))
    with pytest.raises(InputError, match=r"^train_dataset has 1 label\(s\).*'zz' \(1 rows\)"):
        MultilabelTrainer(
            model=_model(setup), args=_args(tmp_path), train_dataset=train,
            processing_class=setup["tokenizer"], label_names=setup["names"],
        )  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"loss": "nope"}, "loss"),
        ({"sampler": "random"}, "sampler"),
        ({"rfs_threshold": 0}, "rfs_threshold"),
        ({"recipe": "fast"}, "recipe"),
        ({"threshold_cv": 1}, "threshold_cv"),
        ({"loss": "bce", "loss_params": {"gamma": 2}}, "loss_params"),
        ({"label_names": ["a", "b"]}, "label_names"),
        ({"head_min": 10, "tail_max": 20}, "tail_max"),
        ({"head_min": 0}, "head_min"),
        ({"max_length": 0}, "max_length"),
        ({"text_column": ""}, "text_column"),
        ({"model": "wrong-size"}, "model"),
    ],
)
def test_bad_option_is_one_parameter_error(setup, tmp_path, kw, param):
    if kw.get("model") == "wrong-size":
        kw = {"model": _model(setup, n_labels=3)}
    with pytest.raises(ParameterError) as err:
        _trainer(setup, tmp_path, **kw)
    assert param in err.value.params, str(err.value)


def test_bucket_bounds_reach_the_metrics(setup, tmp_path):
    """head_min/tail_max as in `mlbalance train`: every label a tail label -> only tail keys."""
    everything_tail = _trainer(setup, tmp_path, head_min=10**9, tail_max=10**9).evaluate()
    assert "eval_macro_f1_tail" in everything_tail
    assert not [k for k in everything_tail if k.endswith(("_head", "_medium"))]


def test_label_files_are_written_atomically(tmp_path, monkeypatch):
    """A write that fails half-way leaves the file a checkpoint already had, and no temporary."""
    from mlbalance.errors import MlbalanceError
    from mlbalance.train.model_folder import write_label_files

    def files():
        return sorted(p.name for p in tmp_path.iterdir())

    write_label_files(tmp_path, thresholds=None, names=["a", "b"], train_counts=np.array([3, 1]),
                      n_rows=4, args={"max_length": 8})  # fmt: skip
    before = {name: (tmp_path / name).read_text() for name in files()}
    assert json.loads(before["label_counts.json"]) == {"n_rows": 4, "counts": {"a": 3, "b": 1}}
    write_text = Path.write_text

    def half_then_fail(self, text, *a, **kw):
        write_text(self, text[: len(text) // 2], *a, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(MlbalanceError):
        write_label_files(tmp_path, thresholds=None, names=["a", "b"],
                          train_counts=np.array([5, 5]), n_rows=9, args={"max_length": 8})  # fmt: skip
    monkeypatch.undo()
    assert files() == sorted(before)
    assert {name: (tmp_path / name).read_text() for name in files()} == before


def test_missing_max_length_is_warned_once_per_trainer(setup, tmp_path, caplog):
    trainer = _trainer(setup, tmp_path / "run", prior_bias=False)
    with caplog.at_level("WARNING", logger="mlbalance.hf.trainer"):
        trainer.save_model(str(tmp_path / "a"))
        trainer.save_model(str(tmp_path / "b"))
    said = [r.getMessage() for r in caplog.records if "max_length not given" in r.getMessage()]
    assert len(said) == 1, said
    saved = json.loads((tmp_path / "b" / "training_args.json").read_text())
    assert saved["max_length"] is None


def test_example_script_trains_and_saves_a_predictor_folder(setup, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "hf_trainer.py"
    spec = importlib.util.spec_from_file_location("hf_trainer_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "model"
    metrics = example.main(
        ["--data", str(setup["root"] / "splits"), "--model", str(setup["tiny"]), "--out",
         str(out), "--max-steps", "2", "--batch-size", "16", "--loss", "asl"]
    )  # fmt: skip
    assert "eval_macro_f1" in metrics and "eval_macro_recall_tail" in metrics
    from mlbalance.train import load_predictor

    predictor = load_predictor(out, device="cpu")
    assert len(predictor.predict(["some text"])) == 1
    assert (out / "thresholds.json").is_file()
