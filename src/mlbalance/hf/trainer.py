"""A ``transformers.Trainer`` with mlbalance's remedies: :class:`MultilabelTrainer`.

Drop it into an unchanged Hugging Face training script in place of ``Trainer``:

* **labels** -- the train dataset's label column (``ClassLabel`` ids, names or multi-hot) is
  parsed once (:mod:`mlbalance.hf._labels`); the data collator is wrapped so every batch
  carries a float multi-hot ``labels`` tensor (labels of an evaluation set that train never
  saw are left out, with one warning naming them); the model config gets ``id2label``,
  ``label2id`` and ``problem_type="multi_label_classification"``.
* **loss** -- any of :data:`mlbalance.train.losses.LOSSES` (``compute_loss``), built from the
  training label counts as ``mlbalance train`` builds it.
* **sampler** -- repeat-factor or class-aware (``_get_train_sampler``), sharded over the
  processes by the sampler itself (accelerate's re-sharding of the batches is switched off).
* **prior bias** -- the output bias starts at ``log(p / (1 - p))`` of the train frequencies.
* **thresholds** -- every evaluation with the ``eval`` prefix tunes one threshold per label
  on the evaluation scores (:class:`mlbalance.thresholds.ThresholdTuner`, the options and
  defaults of ``mlbalance train``: 5-fold guard by frequency group); ``save_model`` and each
  checkpoint write them as ``thresholds.json`` (with ``label_counts.json``), the files of a
  ``mlbalance train`` folder, so :func:`mlbalance.train.load_predictor` and
  ``mlbalance predict`` use the saved folder.
* **metrics** -- ``eval_micro_f1``/``eval_macro_f1`` at the tuned thresholds and at 0.5
  (``..._at_0.5``), macro F1 and recall per head/medium/tail bucket of the train counts.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from mlbalance.errors import ParameterError
from mlbalance.hf._labels import (
    LabelCoding,
    MultiHotCollator,
    coding_of,
    eval_coding,
    label_matrix,
    refuse_unknown_labels,
)
from mlbalance.hf._options import HFOptions, resolve_options
from mlbalance.hf._require import require
from mlbalance.labels import LabelMatrix, as_label_matrix
from mlbalance.train.options import UNSET

require("torch")
require("transformers")
import torch  # noqa: E402
import transformers  # noqa: E402

__all__ = ["MultilabelTrainer"]

logger = logging.getLogger(__name__)

_BUCKETS = ("head", "medium", "tail")
_REPORTED = (
    "micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_precision",
    "macro_recall", "macro_map",
)  # fmt: skip


class MultilabelTrainer(transformers.Trainer):
    """``transformers.Trainer`` for multilabel classification with mlbalance's remedies.

    Every argument of :class:`transformers.Trainer` is accepted as there; the keyword-only
    arguments below are mlbalance's. Options left out come from ``recipe`` (default: the
    ``default`` recipe of ``mlbalance train``: repeat-factor sampling with the threshold
    ``auto``, BCE, prior bias, guarded per-label thresholds), else ``TrainConfig``'s defaults.

    Parameters
    ----------
    train_labels : label matrix, optional
        The train set's labels (anything :func:`mlbalance.labels.as_label_matrix` takes) in
        the row order of ``train_dataset``; default: read from its ``label_column``.
    label_names : sequence of str, optional
        The vocabulary in model output order; default: the ``ClassLabel`` names of the label
        column, else the sorted names of the train set.
    label_column : str, default "labels"
        The label column of the datasets.
    text_column : str, default "text"
        The text column the datasets were tokenised from, and ``max_length`` : int, optional,
        the tokens each text was cut to: both are saved in ``training_args.json`` so that
        ``load_predictor`` and ``mlbalance predict`` read and cut texts the same way (without
        ``max_length`` they cut at 128 tokens, and saving says so).
    recipe, loss, loss_params, sampler, rfs_threshold, rfs_power, prior_bias
        As in :class:`mlbalance.train.TrainConfig`: ``loss`` is one of ``bce``,
        ``weighted-bce``, ``focal``, ``asl``, ``db``, ``logit-adjusted`` with its
        ``loss_params`` (e.g. ``{"scheme": "sqrt-inverse", "max_weight": 10}``); ``sampler``
        is ``"repeat-factor"``, ``"class-aware"`` or ``None``/``"none"`` (the Trainer's own).
    threshold_mode, target_recall, min_positives, threshold_fallback, threshold_smoothing, \
threshold_cv, threshold_guard
        The per-label threshold tuning of ``mlbalance train``.
    head_min, tail_max
        Bucket bounds of the head/medium/tail metrics (train rows), as ``mlbalance train``'s.

    Attributes
    ----------
    options : HFOptions
        The resolved options.
    label_names_ : list of str
    train_labels_ : LabelMatrix
    loss_fn : MultilabelLoss
    sampler_info_ : dict or None
        What the sampler does to an epoch (rows, growth, warnings), once built.
    thresholds_ : ThresholdResult or None
        The thresholds of the last tuning evaluation.

    Raises
    ------
    ParameterError
        A bad option (naming it), or a model whose output size is not the number of labels.
    """

    # compute_loss returns a per-batch mean: training_step divides it by the accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        train_labels: Any = None,
        label_names: Sequence[str] | None = None,
        label_column: str = "labels",
        text_column: str = "text",
        max_length: int | None = None,
        recipe: str = UNSET,
        loss: str = UNSET,
        loss_params: dict[str, Any] = UNSET,
        sampler: str | None = UNSET,
        rfs_threshold: float | str = UNSET,
        rfs_power: float = UNSET,
        prior_bias: bool = UNSET,
        threshold_mode: str = UNSET,
        target_recall: float | None = UNSET,
        min_positives: int = UNSET,
        threshold_fallback: str = UNSET,
        threshold_smoothing: float = UNSET,
        threshold_cv: int | None = UNSET,
        threshold_guard: str = UNSET,
        head_min: int = UNSET,
        tail_max: int = UNSET,
        **kwargs: Any,
    ) -> None:
        self.options: HFOptions = resolve_options(
            recipe=recipe, loss=loss, loss_params=loss_params, sampler=sampler,
            rfs_threshold=rfs_threshold, rfs_power=rfs_power, prior_bias=prior_bias,
            threshold_mode=threshold_mode, target_recall=target_recall,
            min_positives=min_positives, threshold_fallback=threshold_fallback,
            threshold_smoothing=threshold_smoothing, threshold_cv=threshold_cv,
            threshold_guard=threshold_guard, head_min=head_min, tail_max=tail_max,
        )  # fmt: skip
        if not isinstance(label_column, str) or not label_column:
            raise ParameterError(
                f"label_column must be a column name, got {label_column!r}", param="label_column"
            )
        if not isinstance(text_column, str) or not text_column:
            raise ParameterError(
                f"text_column must be a column name, got {text_column!r}", param="text_column"
            )
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ParameterError(
                f"max_length must be a positive number of tokens, got {max_length!r}",
                param="max_length",
            )
        super().__init__(*args, **kwargs)
        self.label_column = label_column
        self.text_column = text_column
        self.max_length = max_length
        self.coding, self.train_labels_ = self._read_labels(train_labels, label_names)
        self.label_names_ = list(self.coding.names)
        counts = self.train_labels_.counts().astype(np.int64)
        self.train_counts_ = counts
        self._configure_model(counts)
        self.loss_fn = self._build_loss(counts)
        self.data_collator = MultiHotCollator(self.data_collator, self.coding, label_column)
        self._eval_codings: dict[int, tuple[Any, LabelCoding]] = {}
        evals = (
            self.eval_dataset if isinstance(self.eval_dataset, dict) else {"": self.eval_dataset}
        )
        for key, dataset in evals.items():
            self._eval_coding(dataset, f"eval_dataset[{key!r}]" if key else "eval_dataset")
        self.model_accepts_loss_kwargs = False  # the loss is ours: no num_items_in_batch
        self.sampler_info_: dict[str, Any] | None = None
        self.thresholds_: Any = None
        self.threshold_tuner_: Any = None
        self._warned_max_length = False

    # ------------------------------------------------------------------ set-up
    def _read_labels(
        self, train_labels: Any, label_names: Sequence[str] | None
    ) -> tuple[LabelCoding, LabelMatrix]:
        """The label coding of the datasets and the train label matrix, parsed once."""
        ds: Any = self.train_dataset
        if train_labels is not None:
            y = as_label_matrix(train_labels, names=label_names)
            names = list(y.names) if label_names is None else [str(n) for n in label_names]
            if ds is not None and len(ds) != y.n_rows:
                raise ParameterError(
                    f"train_labels has {y.n_rows} rows, train_dataset {len(ds)}",
                    param="train_labels",
                )
            has_column = ds is not None and self.label_column in (ds.column_names or ())
            if has_column:
                coding = coding_of(ds, self.label_column, names)
                refuse_unknown_labels(ds, self.label_column, coding)
            else:
                coding = LabelCoding("names", tuple(names))
            return coding, y.with_names(names) if tuple(names) != y.names else y
        if ds is None or not hasattr(ds, "features"):
            raise ParameterError(
                "MultilabelTrainer needs a datasets.Dataset as train_dataset (its label column "
                "is read) or train_labels",
                param="train_labels",
            )
        coding = coding_of(ds, self.label_column, label_names)
        refuse_unknown_labels(ds, self.label_column, coding)
        return coding, label_matrix(ds, self.label_column, coding=coding)

    def _configure_model(self, counts: np.ndarray) -> None:
        """Labels into the model config; the output bias at the label priors."""
        from mlbalance.train.model import head_linear, init_prior_bias

        model: Any = self.model
        names = self.label_names_
        if model is None:
            raise ParameterError("MultilabelTrainer needs a model (model_init is not supported)")
        outputs = getattr(model.config, "num_labels", len(names))
        if outputs != len(names):
            raise ParameterError(
                f"the model has {outputs} outputs for {len(names)} labels: load it with "
                f"num_labels={len(names)}",
                param="model",
            )
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {n: i for i, n in enumerate(names)}
        model.config.problem_type = "multi_label_classification"
        if self.options.prior_bias:
            head_linear(model, len(names))  # an InputError when the model has no such layer
            init_prior_bias(model, counts, self.train_labels_.n_rows)

    def _build_loss(self, counts: np.ndarray) -> torch.nn.Module:
        from mlbalance.train.losses import build_loss

        try:
            return build_loss(
                self.options.loss, label_counts=counts, n_rows=self.train_labels_.n_rows,
                **self.options.loss_params,
            )  # fmt: skip
        except ParameterError as exc:
            raise ParameterError(str(exc), param="loss_params") from None

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None and self.label_column not in self._signature_columns:
            self._signature_columns.append(self.label_column)  # the collator turns it into labels

    # ------------------------------------------------------------------ sampling
    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """mlbalance's repeat-factor or class-aware sampler over the train rows (this rank's
        share), or the Trainer's own sampler for ``sampler="none"``."""
        if self.options.sampler == "none":
            return super()._get_train_sampler(
                *([train_dataset] if train_dataset is not None else [])
            )
        from mlbalance.train.build import build_sampler

        dataset: Any = self.train_dataset if train_dataset is None else train_dataset
        if dataset is not None and len(dataset) != self.train_labels_.n_rows:
            raise ParameterError(
                f"the train dataset has {len(dataset)} rows, its labels {self.train_labels_.n_rows}",
                param="train_labels",
            )
        args = self.args
        seed = args.data_seed if args.data_seed is not None else args.seed
        cfg = SimpleNamespace(
            sampler=self.options.sampler, rfs_threshold=self.options.rfs_threshold,
            rfs_power=self.options.rfs_power, seed=int(seed),
        )  # fmt: skip
        runtime = SimpleNamespace(world=max(int(args.world_size), 1), rank=int(args.process_index))
        sampler, info = build_sampler(cfg, self.train_labels_, runtime)  # type: ignore[arg-type]
        for message in info["warnings"]:
            warnings.warn(f"{self.options.sampler} sampler: {message}", stacklevel=2)
        self.sampler_info_ = info
        return sampler

    def get_train_dataloader(self) -> Any:
        """The Trainer's loader; with a rank-aware mlbalance sampler, accelerate's batch
        re-sharding is made a pass-through (the sampler already gives this rank its rows)."""
        loader = super().get_train_dataloader()
        if self.options.sampler != "none":
            wrapper = getattr(loader, "batch_sampler", None)
            if wrapper is not None and hasattr(wrapper, "num_processes"):
                wrapper.num_processes = 1
                wrapper.process_index = 0
                # the sampler pads every rank to one length: no batch needs completing
                wrapper.even_batches = False
        return loader

    # ------------------------------------------------------------------ loss
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The mlbalance loss of the logits against the multi-hot ``labels``."""
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if labels is None:
            raise ParameterError("a batch without labels: MultilabelTrainer needs the label column")
        loss = self.loss_fn(logits, labels.to(logits.dtype))
        return (loss, outputs) if return_outputs else loss

    # ------------------------------------------------------------------ evaluation
    def _eval_coding(self, dataset: Any, what: str = "the evaluation dataset") -> LabelCoding:
        """How *dataset*'s labels are read into the model's: labels train never saw are left
        out, with one warning per dataset naming them and their rows (as ``mlbalance
        evaluate``)."""
        known = self._eval_codings.get(id(dataset))
        if known is not None and known[0] is dataset:
            return known[1]
        features = getattr(dataset, "features", None)
        if features is None or self.label_column not in features:
            coding = self.coding  # no label column to check: read as the train set's
        else:
            coding, unknown, n_rows = eval_coding(dataset, self.label_column, self.coding)
            if unknown:
                logger.warning(
                    "%s has %d label(s) that train never saw, on %d row(s) (left out of its "
                    "batches and metrics): %s", what, len(unknown), n_rows,
                    ", ".join(f"{k} ({v})" for k, v in list(unknown.items())[:8])
                    + (" ..." if len(unknown) > 8 else ""),
                )  # fmt: skip
        self._eval_codings[id(dataset)] = (dataset, coding)
        return coding

    @contextlib.contextmanager
    def _collating(self, dataset: Any) -> Iterator[None]:
        """The data collator reads *dataset*'s labels with its own coding while a loader is built."""
        train_collator = self.data_collator
        if isinstance(train_collator, MultiHotCollator) and dataset is not None:
            self.data_collator = MultiHotCollator(
                train_collator.collator, self._eval_coding(dataset), self.label_column
            )
        try:
            yield
        finally:
            self.data_collator = train_collator

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        """The Trainer's loader, with labels train never saw left out of the batches."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, str) and isinstance(self.eval_dataset, dict):
            dataset = self.eval_dataset[dataset]
        with self._collating(dataset):
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset: Any) -> Any:
        """The Trainer's loader, with labels train never saw left out of the batches."""
        with self._collating(test_dataset):
            return super().get_test_dataloader(test_dataset)

    def _tunes(self, prefix: str) -> bool:
        """Thresholds are tuned at ``eval`` (the first dataset of a dict of eval datasets)."""
        if isinstance(self.eval_dataset, dict) and self.eval_dataset:
            return prefix == f"eval_{next(iter(self.eval_dataset))}"
        return prefix == "eval"

    def evaluation_loop(
        self,
        dataloader: Any,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        """The Trainer's loop, then: tune thresholds (``eval``) and add mlbalance's metrics.

        ``evaluate`` asks the loop for the loss only when no ``compute_metrics`` was given;
        the scores are needed here, so they are kept unless ``args.prediction_loss_only``.
        """
        if not self.args.prediction_loss_only:
            prediction_loss_only = False
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
        )
        logits, label_ids = output.predictions, output.label_ids
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        if logits is None or label_ids is None:
            return output
        scores = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
        y = (np.asarray(label_ids) >= 0.5).astype(np.uint8)
        if self._tunes(metric_key_prefix):
            self.tune_thresholds(scores, y)
        metrics = self.label_metrics(y, scores)
        if output.metrics is None:
            return output
        output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in metrics.items()})
        return output

    def tune_thresholds(self, scores: np.ndarray, y: Any) -> Any:
        """Tune one threshold per label on *scores* (probabilities) against *y*; kept in
        :attr:`thresholds_` and written by the next save."""
        from mlbalance.thresholds import ThresholdTuner

        o = self.options
        tuner = ThresholdTuner(
            mode=o.threshold_mode, target_recall=o.target_recall, min_positives=o.min_positives,
            smoothing=o.threshold_smoothing, fallback=o.threshold_fallback, cv=o.threshold_cv,
            guard=o.threshold_guard, random_state=int(self.args.seed),
        ).fit(scores, y)  # fmt: skip
        self.threshold_tuner_, self.thresholds_ = tuner, tuner.result_
        logger.info("thresholds tuned on %d rows: %s", len(scores), tuner.result_.summary())
        return tuner.result_

    def label_metrics(self, y: Any, scores: np.ndarray) -> dict[str, float]:
        """Micro/macro scores at the tuned thresholds and at 0.5 (``_at_0.5``), with macro F1
        and recall per head/medium/tail bucket of the train counts (labels train never saw are
        left out)."""
        out: dict[str, float] = {}
        cuts: list[tuple[str, Any]] = [("_at_0.5", 0.5)]
        if self.thresholds_ is not None:
            cuts.insert(0, ("", np.asarray(self.thresholds_.thresholds, dtype=np.float64)))
        else:
            logger.warning(
                "no tuned thresholds yet (no evaluation with the eval prefix): only the "
                "metrics at 0.5 are reported"
            )
        for suffix, cut in cuts:
            for key, value in self._scores(y, scores, cut).items():
                if not (suffix and key == "macro_map"):  # mAP does not depend on the cut
                    out[key + suffix] = value
        return out

    def _scores(self, y: Any, scores: np.ndarray, cut: Any) -> dict[str, float]:
        from mlbalance.metrics import evaluate_scores

        m = evaluate_scores(
            y, scores, cut, names=self.label_names_, train_counts=self.train_counts_,
            head_min=self.options.head_min, tail_max=self.options.tail_max,
        )  # fmt: skip
        out = {k: float(m[k]) for k in _REPORTED if m.get(k) is not None}
        for b in _BUCKETS:
            if m.get(f"macro_recall_{b}") is not None:
                out[f"macro_recall_{b}"] = float(m[f"macro_recall_{b}"])
            f1 = [
                r["f1"]
                for r in m.get("per_label", ())
                if r["bucket"] == b and r["recall"] is not None
            ]
            if f1:
                out[f"macro_f1_{b}"] = float(np.mean(f1))
        return out

    # ------------------------------------------------------------------ saving
    def _save(
        self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None
    ) -> None:
        """The Trainer's save, plus ``thresholds.json`` and ``label_counts.json``."""
        super()._save(output_dir, state_dict=state_dict)
        if not self.args.should_save:
            return
        from mlbalance.train.model_folder import write_label_files

        directory = str(output_dir if output_dir is not None else self.args.output_dir)
        if self.max_length is None and not self._warned_max_length:
            self._warned_max_length = True  # once per trainer, not at every checkpoint
            logger.warning(
                "%s: max_length not given to MultilabelTrainer: load_predictor and mlbalance "
                "predict will cut texts at 128 tokens", directory,
            )  # fmt: skip
        if self.thresholds_ is None:
            logger.warning(
                "%s: no thresholds.json written: no evaluation has tuned thresholds yet "
                "(evaluate with an eval_dataset first)", directory,
            )  # fmt: skip
        write_label_files(
            directory, thresholds=self.thresholds_, names=self.label_names_,
            train_counts=self.train_counts_, n_rows=self.train_labels_.n_rows,
            args={"trainer": "mlbalance.hf.MultilabelTrainer", "text_column": self.text_column,
                  "label_column": self.label_column, "max_length": self.max_length,
                  **self.options.to_dict()},
        )  # fmt: skip

    def _load_best_model(self) -> None:
        """The best checkpoint's weights and the thresholds saved with them."""
        super()._load_best_model()
        from mlbalance.thresholds import ThresholdResult
        from mlbalance.train.model_folder import THRESHOLDS

        best = self.state.best_model_checkpoint
        path = Path(best) / THRESHOLDS if best else None
        if path is not None and path.is_file():
            text = path.read_text(encoding="utf-8")
            self.thresholds_ = ThresholdResult.from_json(text, self.label_names_)
