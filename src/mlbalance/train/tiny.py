"""A tiny random BERT with a tokenizer trained on a corpus: a model folder without downloads.

Used by the tests, the demo and the benchmarks. The weights are random (seeded), so what it
learns in a short run is what the head and a few small layers can learn from the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["make_tiny_model"]

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tiny_model(
    directory: str | Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 2000,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> Path:
    """Write a random BERT encoder and a WordPiece tokenizer trained on *corpus* to *directory*.

    Parameters
    ----------
    directory : str or Path
        Folder to create (``save_pretrained`` layout: ``config.json``, ``model.safetensors``,
        ``tokenizer.json``, ...).
    corpus : iterable of str
        Texts the WordPiece vocabulary is trained on.
    vocab_size : int, default 2000
        Upper bound of the vocabulary size.
    hidden_size, num_layers, num_heads : int
        Size of the :class:`transformers.BertConfig`.
    intermediate_size : int, optional
        Feed-forward width; default ``4 * hidden_size``.
    max_position_embeddings : int, default 512
        Longest sequence the model accepts.
    seed : int, default 0
        Seed of the random weights.

    Returns
    -------
    Path
        *directory*, loadable with ``AutoModel`` / ``AutoTokenizer`` and by ``mlbalance train
        --model``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(vocab_size=vocab_size, special_tokens=_SPECIAL, min_frequency=1)
    backend.train_from_iterator((str(t) for t in corpus), trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_position_embeddings,
    )
    from mlbalance.train.model import quiet_transformers

    with quiet_transformers():
        tokenizer.save_pretrained(directory)

    config = BertConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=backend.token_to_id("[PAD]"),
    )
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        model = BertModel(config)
    with quiet_transformers():
        model.save_pretrained(directory)
    return directory
