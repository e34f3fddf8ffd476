"""The model folder of ``mlbalance train``: the one module that writes it and reads it back.

=====================  ===================================================================
file                   what it holds
=====================  ===================================================================
``config.json``,       an encoder classifier in the ``save_pretrained`` layout (loads with
``model.safetensors``, ``AutoModelForSequenceClassification`` and ``transformers.pipeline``);
tokenizer files        the tokenizer's ``model_max_length`` is the training ``max_length``
``head_config.json``,  or a head on embeddings (:class:`~mlbalance.train.model.EmbeddingHead`)
``head.safetensors``
``thresholds.json``    one threshold per label, tuned on val, and why any fell back
``label_counts.json``  training rows per label (the head/medium/tail buckets of ``evaluate``)
``training_args.json`` the resolved options (paths by their last component only), the input
                       kind, the labels and the label layout the training data was read with
``metrics.json``       :meth:`TrainResult.to_dict`
=====================  ===================================================================

:func:`write_model_folder` writes it atomically (a temporary sibling, renamed when complete);
:func:`load_predictor` reads it into a :class:`~mlbalance.train.predictor.Predictor`, which
scores texts (or embeddings) in memory and backs ``mlbalance evaluate`` and ``predict``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbalance.errors import InputError
from mlbalance.train.model import (
    MODEL_LOAD_ERRORS,
    EmbeddingHead,
    load_tokenizer,
    model_load_failure,
    quiet_transformers,
)
from mlbalance.train.predictor import Predictor, decide
from mlbalance.train.runtime import resolve_device, unwrap
from mlbalance.train.weights import LOAD_ERRORS, read_failure, writing

__all__ = [
    "HEAD_CONFIG",
    "HEAD_WEIGHTS",
    "LABEL_COUNTS",
    "METRICS",
    "SCORES",
    "THRESHOLDS",
    "TRAINING_ARGS",
    "Predictor",
    "TrainResult",
    "decide",
    "label_layout",
    "layout_spec",
    "load_model",
    "load_predictor",
    "read_head",
    "read_thresholds",
    "write_head",
    "write_label_files",
    "write_model_folder",
]

THRESHOLDS = "thresholds.json"
LABEL_COUNTS = "label_counts.json"
TRAINING_ARGS = "training_args.json"
METRICS = "metrics.json"
#: Folder of the val/test probabilities (``save_scores``): ``scores/val.npy``, ``scores/test.npy``.
SCORES = "scores"
HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "head.safetensors"
#: Options that hold paths: recorded by their last component, never as a machine-local path.
PATH_OPTIONS = ("train", "val", "test", "out", "checkpoint_dir", "label_names")


# ----------------------------------------------------------------------------- the result
@dataclass
class TrainResult:
    """What :func:`mlbalance.train.train` returns (every rank gets the same)."""

    out: Path
    names: list[str]
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float
    metrics: dict[str, Any]
    fallback: dict[str, str]
    stopped_early: bool
    seconds: float
    train_samples_per_s: float
    data: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--json`` and ``metrics.json`` hold)."""
        return jsonable(
            {
                "out": Path(str(self.out)).name,  # the folder's name: no machine-local path
                "labels": len(self.names),
                "best_epoch": self.best_epoch,
                "best_value": self.best_value,
                "stopped_early": self.stopped_early,
                "seconds": round(self.seconds, 2),
                "train_samples_per_s": round(self.train_samples_per_s, 1),
                "history": self.history,
                "metrics": self.metrics,
                "threshold_fallback": self.fallback,
                "data": self.data,
                "files": self.files,
            }
        )

    @property
    def timing(self) -> dict[str, float]:
        """Seconds per phase of the training batches (data wait, forward+backward, optimizer,
        syncs, checkpoints), summed over the epochs (see :class:`mlbalance.train.loop.PhaseTimer`)."""
        total: dict[str, float] = {}
        for record in self.history:
            for phase, seconds in (record.get("phase_seconds") or {}).items():
                total[phase] = round(total.get(phase, 0.0) + seconds, 4)
        return total

    def fallback_groups(self) -> list[tuple[str, list[str]]]:
        """The labels without their own tuned threshold, grouped by the tuner's reason.

        Reasons that differ only in their numbers form one group, shown with the range of
        each number (``1-2 positive(s) in validation ...``); largest group first.
        """
        return group_reasons(self.fallback)


_NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def group_reasons(reasons: dict[str, str]) -> list[tuple[str, list[str]]]:
    """``{label: reason}`` -> ``[(reason with number ranges, [labels])]``, largest first."""
    groups: dict[tuple[str, ...], list[tuple[str, list[str]]]] = {}
    for label, reason in reasons.items():
        parts = _NUMBER.split(reason)
        groups.setdefault(tuple(parts[0::2]), []).append((label, parts[1::2]))
    out = []
    for words, members in groups.items():
        shown = []
        for i, word in enumerate(words):
            shown.append(word)
            if i < len(words) - 1:
                values = sorted({m[1][i] for m in members}, key=float)
                shown.append(values[0] if len(values) == 1 else f"{values[0]}-{values[-1]}")
        out.append(("".join(shown), [m[0] for m in members]))
    return sorted(out, key=lambda g: -len(g[1]))


def jsonable(obj: Any) -> Any:
    """*obj* with numpy scalars and arrays as Python values and non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ----------------------------------------------------------------------------- writing
def label_layout(spec: Any, names: Sequence[str]) -> dict[str, Any]:
    """How the training data's labels were read, without any path: what ``evaluate`` reuses.

    A names file becomes ``id_names``, the list integer label ids index (the labels, in
    order), so the folder works on another machine.
    """
    d = spec.to_dict() if spec is not None else {}
    names_file = d.pop("names_file", None)
    d["id_names"] = list(names) if names_file else None
    return d


def public_args(options: dict[str, Any]) -> dict[str, Any]:
    """*options* with every path reduced to its last component (no machine-local path)."""
    out = dict(options)
    for key in PATH_OPTIONS:
        value = out.get(key)
        if isinstance(value, (list, tuple)):  # train read from several files
            out[key] = [Path(str(v)).name for v in value]
        elif value:
            out[key] = Path(str(value)).name
    model = out.get("model")
    if model and (os.path.isabs(model) or Path(model).expanduser().exists()):
        out["model"] = Path(model).expanduser().name
    return out


def write_head(
    head: EmbeddingHead, directory: Path, *, embedding_column: str = "embedding"
) -> None:
    """``head.safetensors`` (weights and standardisation) and ``head_config.json``."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    writing(directory / HEAD_WEIGHTS, lambda: save_file(state, str(directory / HEAD_WEIGHTS)))
    meta = {
        "kind": "embedding-head",
        "dim": head.dim,
        "dropout": head.dropout_p,
        "hidden": head.hidden,
        "standardize": head.standardize,
        "embedding_column": embedding_column,
        "problem_type": "multi_label_classification",
        "id2label": {str(i): n for i, n in enumerate(head.names)},
    }
    _write_json(directory / HEAD_CONFIG, meta)


def _write_json(path: Path, obj: Any) -> None:
    """Write *obj* as JSON atomically (a temporary sibling renamed onto *path*): a folder
    written in place, such as a Trainer checkpoint, never holds a half-written file."""
    from mlbalance.io import atomic_path

    text = json.dumps(jsonable(obj), indent=1, ensure_ascii=False)

    def write() -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")

    writing(path, write)


def write_label_files(
    directory: str | Path,
    *,
    thresholds: Any,
    names: Sequence[str],
    train_counts: np.ndarray,
    n_rows: int,
    args: dict[str, Any] | None = None,
) -> list[str]:
    """``thresholds.json`` (a :class:`~mlbalance.thresholds.ThresholdResult`; skipped when
    None), ``label_counts.json`` and, given *args* (``text_column``, ``max_length``, ...),
    ``training_args.json`` in *directory*: what makes any saved multilabel classifier folder
    a :func:`load_predictor` folder. Returns the names written."""
    directory = Path(directory)
    written = []
    if thresholds is not None:
        _write_json(directory / THRESHOLDS, thresholds.to_json(list(names)))
        written.append(THRESHOLDS)
    counts = {n: int(c) for n, c in zip(names, train_counts, strict=True)}
    _write_json(directory / LABEL_COUNTS, {"n_rows": int(n_rows), "counts": counts})
    written.append(LABEL_COUNTS)
    if args is not None:
        _write_json(directory / TRAINING_ARGS, public_args(args))
        written.append(TRAINING_ARGS)
    return written


def write_model_folder(
    out: str | Path,
    *,
    model: torch.nn.Module,
    tokenizer: Any,
    thresholds: Any,
    names: list[str],
    train_counts: np.ndarray,
    n_rows: int,
    args: dict[str, Any],
    result: TrainResult,
    overwrite: bool = False,
    scores: dict[str, np.ndarray] | None = None,
) -> list[str]:
    """Write the model folder *out* atomically; return the names of the files written.

    *args* are the resolved options plus ``mode``, ``labels``, ``label_layout`` and
    ``max_length`` (None for a head); paths in them are reduced to their last component.
    *scores* (``{"val": ..., "test": ...}``, float32 probabilities in the label order of
    *names*) go to ``scores/<split>.npy``.
    """
    from mlbalance.io import output_dir

    with output_dir(out, overwrite=overwrite) as tmp:
        module = unwrap(model).cpu()
        if isinstance(module, EmbeddingHead):
            write_head(module, tmp, embedding_column=args.get("embedding_column", "embedding"))
        else:
            # the tokenizer cuts where training cut, so transformers.pipeline(...,
            # truncation=True) scores a long text as `mlbalance predict` does
            tokenizer.model_max_length = int(args["max_length"])
            with quiet_transformers():
                writing(tmp, lambda: module.save_pretrained(tmp))  # type: ignore[operator]
                writing(tmp, lambda: tokenizer.save_pretrained(tmp))
        write_label_files(
            tmp, thresholds=thresholds, names=names, train_counts=train_counts, n_rows=n_rows
        )
        _write_json(tmp / TRAINING_ARGS, public_args(args))
        for split, values in (scores or {}).items():
            target = tmp / SCORES / f"{split}.npy"
            target.parent.mkdir(exist_ok=True)
            writing(tmp, partial(np.save, target, np.asarray(values, dtype=np.float32)))
        files = [*sorted(p.name for p in tmp.iterdir()), METRICS]
        result.files = files
        public = result.to_dict()
        public["out"] = Path(str(out)).name
        _write_json(tmp / METRICS, public)
    return files


# ----------------------------------------------------------------------------- reading
def read_head(directory: Path) -> EmbeddingHead:
    """Read a head written by :func:`write_head` (safetensors only).

    Heads saved before ``hidden``/``standardize`` existed load as linear, unstandardised.
    """
    from safetensors.torch import load_file

    try:
        meta = json.loads((directory / HEAD_CONFIG).read_text(encoding="utf-8"))
        names = [meta["id2label"][str(i)] for i in range(len(meta["id2label"]))]
        head = EmbeddingHead(
            int(meta["dim"]),
            names,
            float(meta.get("dropout", 0.0)),
            hidden=int(meta.get("hidden", 0)),
            standardize=bool(meta.get("standardize", False)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{directory / HEAD_CONFIG}: not a head configuration ({exc})") from None
    try:
        head.load_state_dict(load_file(str(directory / HEAD_WEIGHTS)))
    except LOAD_ERRORS as exc:
        raise read_failure(directory / HEAD_WEIGHTS, exc) from None
    except RuntimeError as exc:
        raise InputError(
            f"{directory / HEAD_WEIGHTS}: does not fit {HEAD_CONFIG} ({exc})"
        ) from None
    return head


def load_model(directory: str | Path, *, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a model folder; the tokenizer is None for a head.

    Raises :class:`InputError` when *directory* is not a model written by ``mlbalance train``
    (or any multilabel sequence-classification folder), or holds a weight file that is not
    safetensors or a weights-only pickle.
    """
    directory = Path(directory)
    if directory.is_file():
        raise InputError(f"{directory}: is a file, not a model folder (written by mlbalance train)")
    if not directory.is_dir():
        raise InputError(f"{directory}: no such model folder")
    if (directory / HEAD_CONFIG).is_file():
        return read_head(directory), None
    if not (directory / "config.json").is_file():
        raise InputError(f"{directory}: not a model folder (no config.json or {HEAD_CONFIG})")
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                str(directory), trust_remote_code=trust_remote_code
            )
    except MODEL_LOAD_ERRORS as exc:
        raise model_load_failure(directory, exc) from None
    return model, load_tokenizer(str(directory), trust_remote_code=trust_remote_code)


def model_label_names(model: Any) -> list[str]:
    """Label names in output order, from an :class:`EmbeddingHead` or a HF config."""
    if isinstance(model, EmbeddingHead):
        return list(model.names)
    id2label = model.config.id2label
    return [str(id2label[i]) for i in range(len(id2label))]


def read_thresholds(path: Path, names: Sequence[str]) -> np.ndarray:
    """Thresholds per label from ``thresholds.json``, in the order of *names*."""
    from mlbalance.thresholds import ThresholdResult

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        result = ThresholdResult.from_json(data, names)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: cannot read thresholds ({exc})") from None
    return np.asarray(result.thresholds, dtype=np.float64)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


@contextlib.contextmanager
def layout_spec(
    layout: dict[str, Any],
    *,
    header_names: Sequence[str] | None = None,
    text_column: str | None = None,
) -> Iterator[Any]:
    """The :class:`mlbalance.io.LabelSpec` of a recorded :func:`label_layout`.

    ``id_names`` is handed to the reader as a temporary names file for the block.
    """
    from mlbalance.io import LabelSpec

    header = header_names or layout.get("header_names")
    kw: dict[str, Any] = {
        "column": layout.get("column") or "labels",
        "sep": layout.get("sep"),
        "columns": tuple(layout["columns"]) if layout.get("columns") else None,
        "prefix": layout.get("prefix"),
        "text_column": text_column or layout.get("text_column") or "text",
        "header_names": tuple(header) if header else None,
    }
    ids = layout.get("id_names")
    if not ids:
        yield LabelSpec(**kw)
        return
    with tempfile.TemporaryDirectory(prefix="mlbalance-labels-") as tmp:
        names_file = Path(tmp) / "label-names.txt"
        names_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
        yield LabelSpec(names_file=str(names_file), **kw)


def load_predictor(
    directory: str | Path, *, device: str = "auto", trust_remote_code: bool = False
) -> Predictor:
    """Load a model folder written by ``mlbalance train`` into a :class:`Predictor`.

    Parameters
    ----------
    directory : str or Path
        The output folder of ``mlbalance train`` (or any multilabel sequence-classification
        folder; without ``thresholds.json`` every threshold is 0.5, with a warning).
    device : str, default "auto"
        Where to run.
    trust_remote_code : bool, default False
        Allow the folder's own Python code.

    Examples
    --------
    >>> predictor = load_predictor("model/")  # doctest: +SKIP
    >>> predictor.predict(["what a lovely day", "this is awful"])  # doctest: +SKIP
    [['joy'], ['anger', 'disgust']]
    """
    directory = Path(directory)
    model, tokenizer = load_model(directory, trust_remote_code=trust_remote_code)
    names = model_label_names(model)
    args = _read_json(directory / TRAINING_ARGS) if (directory / TRAINING_ARGS).is_file() else {}
    if (directory / THRESHOLDS).is_file():
        thresholds = read_thresholds(directory / THRESHOLDS, names)
    else:
        warnings.warn(f"{directory}: no {THRESHOLDS}; using 0.5 for every label", stacklevel=2)
        thresholds = np.full(len(names), 0.5)
    counts = np.ones(len(names), dtype=np.int64)
    if (directory / LABEL_COUNTS).is_file():
        by_name = _read_json(directory / LABEL_COUNTS).get("counts", {})
        counts = np.array([int(by_name.get(n, 0)) for n in names], dtype=np.int64)
    run_on = resolve_device(device)
    model.to(run_on)
    model.eval()
    return Predictor(directory, model, tokenizer, names, thresholds, counts, args, run_on)
