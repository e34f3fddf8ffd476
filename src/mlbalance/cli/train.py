"""``mlbalance train``: fine-tune an encoder (or a head on embeddings) for multilabel text.

The one place that turns :class:`~mlbalance.train.config.TrainConfig` fields into flags: one
flag per field (``--batch-size`` for ``batch_size``), grouped, with the field's help, default
and choices. Defaults are not put in the namespace, so only the flags the user typed (and the
``--config`` file's keys) reach :class:`TrainConfig`, which fills the rest from the recipe and
the defaults.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

from mlbalance.cli._extras import needs_train_extras
from mlbalance.cli._options import (
    add_json_argument,
    add_per_label_arguments,
    check_plot_path,
    emit_json,
    per_label_lines,
)
from mlbalance.errors import ParameterError

__all__ = ["add_config_arguments", "config_from_args", "format_summary", "register", "run"]

DESCRIPTION = """\
Train a multilabel classifier on a split from `mlbalance split` / `resample`: a Hugging Face
encoder with dropout and a linear head on the pooled output (saved so that
AutoModelForSequenceClassification and transformers.pipeline load it), or, when the data has
an embedding column, a head alone. Imbalance remedies: --loss (weighted-bce, focal, asl, db,
...), --sampler (repeat-factor, class-aware), head bias from label priors, separate head
learning rate, --train-last-layers, per-label thresholds tuned on val, and --recipe presets.

Every option can also come from --config FILE (YAML or JSON, keys as the flags). Runs
unchanged under `torchrun --nproc_per_node N -m mlbalance train ...` (DDP).

example:
  mlbalance train --train splits/train --val splits/val --test splits/test \\
      --model all-MiniLM-L6-v2 --loss asl --sampler repeat-factor --out model/

k-fold: --folds DIR (the output of `mlbalance split --folds K`, K >= 3) instead of
--train/--val/--test trains one model per fold (test = fold k, val = fold k+1, train = the
others) into OUT/fold-k and writes OUT/folds.json: each test metric's mean ± std over folds.
  mlbalance train --folds folds/ --model all-MiniLM-L6-v2 --out cv/
"""

_GROUPS = {
    "data": "data",
    "model": "model",
    "loss": "loss and sampling",
    "optim": "optimisation",
    "eval": "evaluation and thresholds",
    "ckpt": "checkpoints",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _float_or_auto(text: str) -> float | str:
    if text.strip() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per :class:`TrainConfig` option (defaults suppressed)."""
    from mlbalance._params import Options
    from mlbalance.train.config import option_fields
    from mlbalance.train.config_file import field_type
    from mlbalance.train.options import Registry

    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of options (keys as the flags, with _ or -); flags given here "
        "override it",
    )
    groups = {key: parser.add_argument_group(title) for key, title in _GROUPS.items()}
    has_torch = importlib.util.find_spec("torch") is not None
    for f in option_fields():
        meta = f.metadata
        group, default, rule = groups[meta["group"]], meta["default"], meta["rule"]
        shown = "" if meta["required"] or default in (None, "", {}) else f" (default {default})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if f.name == "loss_params":
            group.add_argument(
                "--loss-params", "--loss-param", action="extend", nargs="+",
                metavar="KEY=VALUE", help=meta["help"], **kw,
            )  # fmt: skip
            continue
        if field_type(f.name) is bool:
            group.add_argument(
                _flag(f.name), action=argparse.BooleanOptionalAction, help=meta["help"] + shown,
                **kw,
            )  # fmt: skip
            continue
        if isinstance(rule, Options):
            kw["choices"] = rule.values
        elif isinstance(rule, Registry):
            # read when argparse checks a value or prints help (the losses import torch);
            # a named metavar keeps argparse from listing them while the parser is built
            kw["metavar"] = f.name.upper()
            if has_torch or rule.module != "mlbalance.train.losses":
                kw["choices"] = rule
                shown = " (%(choices)s" + (f"; default {default})" if default else ")")
        else:
            kw["metavar"] = f.name.upper()
        kind = _float_or_auto if f.name == "rfs_threshold" else field_type(f.name)
        group.add_argument(_flag(f.name), type=kind, help=meta["help"] + shown, **kw)


def config_from_args(args: argparse.Namespace | dict[str, Any]) -> Any:
    """The :class:`TrainConfig` of the flags given, over the ``--config`` file's options.

    Recipes and defaults are resolved by :class:`TrainConfig` itself, as for a library call.
    """
    from mlbalance.train.config import TrainConfig
    from mlbalance.train.config_file import parse_loss_params

    given = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    for key in ("func", "command", "json", *_RUN_FLAGS):
        given.pop(key, None)
    config_path = given.pop("config", None)
    if isinstance(given.get("loss_params"), list):
        given["loss_params"] = parse_loss_params(given["loss_params"])
    if config_path:
        return TrainConfig.from_file(config_path, **given)
    return TrainConfig(**given)


def register(subparsers: Any) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="train a multilabel text classifier with imbalance remedies",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--folds", metavar="DIR",
        help="k-fold training on the folds of `mlbalance split --folds K` (K >= 3) instead of "
        "--train/--val/--test: one model per fold in OUT/fold-k, mean ± std in OUT/folds.json",
    )  # fmt: skip
    add_per_label_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


#: Flags of the command that are not training options (not fields of TrainConfig).
_RUN_FLAGS = ("folds", "per_label", "plot")


def _sampler_lines(data: dict[str, Any]) -> list[str]:
    s = data.get("sampler") or {}
    if not s:
        return []
    name = s["name"]
    if name == "none":
        return []
    settings = ""
    if name == "repeat-factor":
        t = s["threshold"]
        t = f"{t:.4g}" if isinstance(t, (int, float)) else str(t)
        auto = "auto = " if s.get("threshold_given") == "auto" else ""
        settings = f" (threshold {auto}{t}, power {s['power']})"
    lines = [
        f"  sampler {name}{settings}: {s['rows_per_epoch']:,.0f} rows per epoch expected, "
        f"{s['growth']:.2f}x the {s['input_rows']:,} input rows"
    ]
    lines += [f"  sampler warning: {w}" for w in s.get("warnings", [])]
    return lines


def _threshold_lines(result: Any, cfg: Any) -> list[str]:
    groups = result.fallback_groups()
    n_fell = sum(len(labels) for _, labels in groups)
    head = (
        f"  thresholds: tuned per label on val ({cfg.threshold_mode}); {n_fell} of "
        f"{len(result.names)} label(s) did not keep their own tuned threshold"
    )
    lines = [head + (":" if groups else "")]
    for reason, labels in groups:
        shown = ", ".join(labels[:3]) + (", …" if len(labels) > 3 else "")
        lines.append(f"    {len(labels):>5} × {reason} ({shown})")
    return lines


def format_summary(result: Any, cfg: Any) -> str:
    """The one-screen summary printed at the end of a run."""
    from mlbalance.metrics import format_metrics

    d = result.data
    lines = [
        f"mlbalance train: {len(result.history)} epoch(s), best epoch {result.best_epoch} "
        f"({cfg.metric} {result.best_value:.4f}){', stopped early' if result.stopped_early else ''}"
        f"; {result.seconds:.1f} s, {result.train_samples_per_s:,.0f} train rows/s",
        f"  data: train {d['train_rows']:,} rows, val {d['val_rows']:,}"
        + (f", test {d['test_rows']:,}" if d["test_rows"] else "")
        + f"; {len(result.names)} labels; recipe {cfg.recipe}, loss {cfg.loss}, "
        f"sampler {cfg.sampler}",
    ]
    lines += _sampler_lines(d)
    if d.get("max_length"):
        tr = d["truncated"]
        lines.append(
            f"  text: truncated at {d['max_length']} tokens: {tr['train_first_epoch']:,} "
            f"train rows (epoch 1), {tr['val']:,} val; empty: "
            f"{d['empty_text']['train']:,} train, {d['empty_text']['val']:,} val"
        )
    for which, labels in d["unseen_labels"].items():
        if labels:
            lines.append(
                f"  {which}: {len(labels)} label(s) train never saw, left out: "
                + ", ".join(list(labels)[:5])
            )
    lines += _threshold_lines(result, cfg)
    m = result.metrics
    lines.append(format_metrics(m["val_at_0.5"], title="val, threshold 0.5"))
    lines.append(format_metrics(m["val"], title="val, tuned thresholds"))
    if "test" in m:
        lines.append(format_metrics(m["test_at_0.5"], title="test, threshold 0.5"))
        lines.append(format_metrics(m["test"], title="test, tuned thresholds"))
    lines.append(f"  {', '.join(result.files)} -> {result.out}")
    return "\n".join(lines)


def _per_label_block(result: Any) -> tuple[str, dict[str, Any]]:
    """Which metrics the per-label results show: test when there is one, else val."""
    which = "test" if "test" in result.metrics else "val"
    return which, result.metrics[which]


def _run_folds(args: argparse.Namespace) -> int:
    """``--folds DIR``: :func:`mlbalance.train.folds.train_folds` with the other options."""
    given = dict(vars(args))
    clash = [k for k in ("train", "val", "test") if given.get(k) is not None]
    if clash:
        raise ParameterError(
            f"folds cannot be combined with {', '.join(clash)} (each fold is test, val and "
            "train in turn)",
            param=("folds", *clash),
        )
    if args.per_label or args.plot:
        raise ParameterError(
            "per_label and plot show one model; with folds, run evaluate with them on a fold's "
            "model folder (OUT/fold-k)",
            param=("per_label", "plot", "folds"),
        )
    with needs_train_extras("train"):
        from mlbalance.train.config_file import merge_config_file, parse_loss_params
        from mlbalance.train.folds import format_folds, train_folds
        from mlbalance.train.runtime import process_rank

        for key in ("func", "command", "json", *_RUN_FLAGS):
            given.pop(key, None)
        config_path = given.pop("config", None)
        if isinstance(given.get("loss_params"), list):
            given["loss_params"] = parse_loss_params(given["loss_params"])
        options = merge_config_file(config_path, given) if config_path else given
        for key in ("train", "val", "test"):
            if options.get(key) is not None:  # from the --config file
                raise ParameterError(
                    f"folds replaces train, val and test; {config_path} gives {key}",
                    param=("folds",),
                )
        out = options.pop("out", None)
        if not out:
            raise ParameterError("missing required option(s): out", param="out")
        result = train_folds(args.folds, out, options, overwrite=bool(options.get("overwrite")))
    if process_rank() == 0:  # under torchrun every rank returns; one prints
        print(format_folds(result), file=sys.stderr if args.json == "-" else sys.stdout)
        emit_json(result.to_dict(), args.json)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``mlbalance train``."""
    if args.folds is not None:
        return _run_folds(args)
    with needs_train_extras("train"):
        from mlbalance.train.options import path_list
        from mlbalance.train.runtime import process_rank
        from mlbalance.train.trainer import train

        cfg = config_from_args(args)
        check_plot_path(args, [*path_list(cfg.train), cfg.val, cfg.test], out=cfg.out)
        result = train(cfg)
    if process_rank() == 0:  # under torchrun every rank returns; one prints
        which, metrics = _per_label_block(result)
        lines = [format_summary(result, cfg)]
        lines += per_label_lines(metrics, args, title=f"{which}, tuned thresholds, per label")
        print("\n".join(lines), file=sys.stderr if args.json == "-" else sys.stdout)
        emit_json(result.to_dict(), args.json)
    return 0
