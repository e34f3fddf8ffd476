"""Options as text: a YAML or JSON options file, and ``KEY=VALUE`` loss parameters.

What :meth:`mlbalance.train.config.TrainConfig.from_file` and the ``mlbalance train`` flags
read. Values are not resolved or checked here; :class:`~mlbalance.train.config.TrainConfig`
does that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlbalance.errors import ParameterError
from mlbalance.train.config import option_fields

__all__ = ["field_type", "load_config_file", "merge_config_file", "parse_loss_params"]


def _fields() -> dict[str, Any]:
    return {f.name: f for f in option_fields()}


def field_type(name: str) -> type:
    """``int``, ``float``, ``bool`` or ``str``: how a text value of option *name* is read."""
    annotation = str(_fields()[name].type)
    for kind in (bool, int, float):
        if annotation.startswith(kind.__name__):
            return kind
    return str


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
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ParameterError(
                f"loss_params expects KEY=VALUE, got {item!r}", param="loss_params"
            )
        out[key.strip().replace("-", "_")] = _coerce_scalar(value.strip())
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON options file into ``{option: value}`` (not yet resolved).

    Keys may use ``-`` or ``_``; numbers written as strings (YAML's ``3e-5``) are converted.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"options file {path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ParameterError(f"options file {path}: not valid YAML/JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"options file {path}: expected a mapping of options, got {type(data).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = "loss_params" if name == "loss_param" else name
        if name not in _fields():
            raise ParameterError(f"options file {path}: unknown option {key!r}")
        if name == "loss_params" and isinstance(value, list):
            value = parse_loss_params([str(v) for v in value])
        elif isinstance(value, str) and field_type(name) in (int, float):
            value = _number(value, name, path)
        out[name] = value
    return out


def merge_config_file(path: str | Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The options of the file at *path* with *overrides* on top.

    ``loss_params`` merge key by key (the file's ``gamma`` and a flag's ``alpha`` both stay);
    every other override replaces the file's value. What :meth:`TrainConfig.from_file` and
    ``train --folds --config`` both do.
    """
    values = load_config_file(path)
    merged = {**values, **overrides}
    if isinstance(values.get("loss_params"), dict) and isinstance(
        overrides.get("loss_params"), dict
    ):
        merged["loss_params"] = {**values["loss_params"], **overrides["loss_params"]}
    return merged


def _number(value: str, name: str, path: Path) -> Any:
    if name == "rfs_threshold" and value.strip() == "auto":
        return "auto"
    try:
        return field_type(name)(value)
    except ValueError:
        raise ParameterError(
            f"options file {path}: option {name!r} must be a number, got {value!r}"
        ) from None
