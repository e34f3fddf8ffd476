"""The GPU data path and its options, checked on CPU: length grouping, length-sorted scoring,
torch.compile plumbing, decoupled classifier re-training (cRT) and the saved scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import test_train  # noqa: E402
from mlbalance.train.trainer import train  # noqa: E402

# the tiny text model and the synthetic splits, as test_train has them; one torch thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")
text_data = test_train.text_data
emb_data = test_train.emb_data
text_config = test_train.text_config


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_length_grouping_trains_deterministically(text_data, tmp_path):
    a = train(text_config(text_data, tmp_path / "a", group_by_length=True), progress=False)
    b = train(text_config(text_data, tmp_path / "b", group_by_length=True), progress=False)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    plain = train(text_config(text_data, tmp_path / "c"), progress=False)
    # the same rows in another batch order: another loss path, same data accounted for
    assert a.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert a.data["train_rows"] == plain.data["train_rows"]


def test_scoring_longest_first_returns_scores_in_row_order(text_data):
    import pyarrow.parquet as pq
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlbalance.train.batching import TokenBatches, TokenCache
    from mlbalance.train.inference import predict_logits

    texts = pq.read_table(text_data["val"]).column("text").to_pylist()
    tok = AutoTokenizer.from_pretrained(str(text_data["model"]))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(text_data["model"]), num_labels=5
    )
    data = TokenBatches(TokenCache.build(texts, tok, max_length=32), None)
    assert len(set(data.lengths.tolist())) > 3
    batched, _ = predict_logits(model, data, len(texts), batch_size=16)
    one_by_one = np.concatenate(
        [predict_logits(model, data, len(texts), batch_size=1)[0]]
    )  # batch 1: no padding at all
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-5)
    model.eval()
    with torch.no_grad():
        row = data[[7]]
        direct = model(input_ids=row["input_ids"], attention_mask=row["attention_mask"]).logits
    np.testing.assert_allclose(batched[7], direct[0].numpy(), rtol=1e-4, atol=1e-5)


def test_compile_option_trains_through_torch_compile(text_data, tmp_path, monkeypatch):
    calls = []
    original = torch.compile

    def eager_compile(model, **kw):  # dynamo traces; the eager backend keeps the test fast
        calls.append(kw)
        return original(model, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    eager = train(text_config(text_data, tmp_path / "eager"), progress=False)
    compiled = train(
        text_config(text_data, tmp_path / "compiled", compile="reduce-overhead"), progress=False
    )
    assert calls == [{"mode": "reduce-overhead"}]
    assert compiled.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], 1e-4)
    args = json.loads((tmp_path / "compiled" / "training_args.json").read_text())
    assert args["compile"] == "reduce-overhead"


def test_crt_retrains_only_the_output_layer(text_data, tmp_path):
    plain = train(text_config(text_data, tmp_path / "plain"), progress=False)
    crt = train(text_config(text_data, tmp_path / "crt", crt_epochs=3), progress=False)
    info = crt.data["sampler"]["crt"]
    assert info["epochs"] == 3 and info["sampler"] == "class-aware"
    assert info["feature_width"] == 32 and info["rows_per_epoch"] > 0
    assert set(info["val_at_0.5_before"]) == {"macro_f1", "micro_f1"}
    # before cRT the run is the plain one: its val F1 at 0.5 is what plain training reached
    assert info["val_at_0.5_before"]["macro_f1"] == pytest.approx(
        plain.metrics["val_at_0.5"]["macro_f1"]
    )
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "crt")
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed == {"classifier.weight", "classifier.bias"}


def test_crt_on_an_embedding_head(emb_data, tmp_path):
    from mlbalance.train.config import TrainConfig

    cfg = TrainConfig(
        train=str(emb_data["train"]), val=str(emb_data["val"]), out=str(tmp_path / "h"),
        epochs=2, batch_size=32, head_hidden=8, crt_epochs=2, crt_sampler="repeat-factor",
        rfs_threshold="auto",
    )  # fmt: skip
    result = train(cfg, progress=False)
    assert result.data["sampler"]["crt"]["feature_width"] == 8  # the hidden layer's output


def test_save_scores_reproduce_the_tuned_thresholds(text_data, tmp_path):
    """The decision layer (library and CLI) gives the trainer's thresholds on its val scores."""
    from mlbalance.cli import main
    from mlbalance.io import read_labels
    from mlbalance.thresholds import ThresholdTuner
    from mlbalance.train.model_folder import read_thresholds

    result = train(text_config(text_data, tmp_path / "m", save_scores=True), progress=False)
    folder = tmp_path / "m"
    val = np.load(folder / "scores" / "val.npy")
    test = np.load(folder / "scores" / "test.npy")
    assert val.dtype == np.float32 and val.shape == (result.data["val_rows"], len(result.names))
    assert test.shape[0] == result.data["test_rows"]
    saved = read_thresholds(folder / "thresholds.json", result.names)
    y = read_labels(str(text_data["val"])).with_names(result.names)
    again = ThresholdTuner(cv=5, guard="group", random_state=0).fit(val, y)
    np.testing.assert_array_equal(again.thresholds_, saved)
    out = tmp_path / "cli.json"
    names = ",".join(result.names)
    assert main(["thresholds", "tune", "--scores", str(folder / "scores" / "val.npy"),
                 "--labels", str(text_data["val"]), "--score-names", names,
                 "--cv", "5", "--guard", "group", "--out", str(out)]) == 0  # fmt: skip
    np.testing.assert_array_equal(read_thresholds(out, result.names), saved)
