"""The tokenise-once data path: batches equal the tokenizer's own padding; length grouping."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlbalance.train.batching import TokenCache, length_grouped_order


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from mlbalance.train.tiny import make_tiny_model

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    corpus = [" ".join(rng.choice(words, size=rng.integers(1, 40))) for _ in range(400)]
    folder = make_tiny_model(tmp_path_factory.mktemp("tiny"), corpus, vocab_size=400)
    return AutoTokenizer.from_pretrained(str(folder)), corpus


def test_batches_equal_the_tokenizers_padding(tokenizer):
    tok, corpus = tokenizer
    texts = [*corpus[:50], "", None]
    cache = TokenCache.build(texts, tok, max_length=16, chunk_rows=7)
    assert len(cache) == len(texts)
    rows = np.array([3, 0, 51, 17, 50, 17])
    got = cache.batch(rows)
    want = tok([texts[i] or "" for i in rows], truncation=True, max_length=16, padding="longest")
    np.testing.assert_array_equal(got["input_ids"], np.asarray(want["input_ids"]))
    np.testing.assert_array_equal(got["attention_mask"], np.asarray(want["attention_mask"]))
    if "token_type_ids" in want:
        np.testing.assert_array_equal(got["token_type_ids"], 0)
    full = tok(texts[:50], truncation=False)["input_ids"]
    np.testing.assert_array_equal(cache.truncated[:50], [len(x) > 16 for x in full])


def test_pad_to_multiple_of_rounds_the_width_up(tokenizer):
    tok, corpus = tokenizer
    cache = TokenCache.build(corpus[:40], tok, max_length=64)
    rows = np.arange(10)
    plain = cache.batch(rows)
    padded = cache.batch(rows, pad_to_multiple_of=16)
    width = plain["input_ids"].shape[1]
    assert padded["input_ids"].shape[1] == -(-width // 16) * 16
    np.testing.assert_array_equal(padded["input_ids"][:, :width], plain["input_ids"])
    assert (padded["input_ids"][:, width:] == cache.pad_id).all()
    assert padded["attention_mask"][:, width:].sum() == 0


def test_length_grouping_keeps_the_multiset_and_cuts_padding():
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 128, size=5000)
    order = rng.choice(5000, size=7001, replace=True)  # a sampler's order, with repeats
    grouped = length_grouped_order(order, lengths, 32, seed=7)
    np.testing.assert_array_equal(np.sort(grouped), np.sort(order))
    np.testing.assert_array_equal(grouped, length_grouped_order(order, lengths, 32, seed=7))
    assert not np.array_equal(grouped, length_grouped_order(order, lengths, 32, seed=8))

    def padded_tokens(o: np.ndarray) -> int:
        return sum(
            int(lengths[o[i : i + 32]].max()) * len(o[i : i + 32]) for i in range(0, len(o), 32)
        )

    assert padded_tokens(grouped) < 0.7 * padded_tokens(order)
    first = grouped[:32]
    assert lengths[first].max() == lengths[order].max()  # the longest batch comes first
    assert len(grouped) % 32 == len(order) % 32


def test_length_grouping_leaves_short_orders_alone():
    lengths = np.arange(10)
    np.testing.assert_array_equal(length_grouped_order([4, 2, 9], lengths, 8), [4, 2, 9])
