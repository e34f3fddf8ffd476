"""The plain-language reading of an ``analyse`` report: what the figures say, and what to do.

The advice is a short decision list, each rule grounded in the literature or in the project's
own measurements (BENCHMARKS.md, "Recipe study"), first match wins after the split check:

1. **Labels too rare to split** come first: a label with fewer rows than folds, or too few
   for a proportional share of a test split, cannot be measured reliably whatever remedy is
   used (Sechidis et al. 2011 on rare labels in stratification); say so before any balancing.
2. **Balanced** (MeanIR <= 1.5, the bound Charte et al. 2015 use for "imbalanced"): no
   resampling; per-label thresholds only.
3. **No tail label**, or a tail of under 5 % of the labels: per-label thresholds first. On
   GoEmotions (28 labels, the rarest with 77 rows) thresholds took test macro F1 from 0.198 to
   0.397, and no loss, sampler or resampling method added more than the seed noise on top.
4. **High label concurrence** (SCUMBLE > 0.1, the bound of Charte et al. 2019): rare labels
   share rows with frequent ones, so copying rows (ML-ROS, MLSMOTE) copies head labels too —
   MLSMOTE raises MeanIR on MULAN cal500, scene and bibtex (tests/test_resample_mulan.py).
   Decouple with REMEDIAL (designed for this case) or use a sampler, rather than ML-ROS.
5. **A long tail with low concurrence**: the rows of rare labels seldom carry head labels, so
   rebalancing rows targets them: repeat-factor sampling at the derived threshold (the
   trainer's default recipe; fine-tuned, one seed: +8 to +9 points of macro F1 on the two
   long-tailed sets with more micro F1), class-aware sampling when tail recall comes first
   (``--recipe long-tail``; frozen synthetic study: tail recall 0.060 -> 0.184), or ML-ROS
   (+0.6-0.7 macro F1 there).
"""

from __future__ import annotations

from typing import Any

__all__ = ["LONG_TAIL_SHARE", "MEAN_IR_IMBALANCED", "SCUMBLE_HIGH", "advice", "reading"]

MEAN_IR_IMBALANCED = 1.5
SCUMBLE_HIGH = 0.1
#: A tail of at least this share of the labels with rows is a long tail (rule 3 vs 5).
LONG_TAIL_SHARE = 0.05


def _names_preview(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … (+{len(names) - limit})" if len(names) > limit else "")


def _split_warning(r: dict[str, Any]) -> str | None:
    """Rule 1: labels too rare for the folds or the test split, or on a single row."""
    s = r["splits"]
    rare = list(dict.fromkeys(s["rare_for_folds"] + s["rare_for_test"]))
    if not rare:
        return None
    why = []
    if s["rare_for_folds"]:
        why.append(
            f"{len(s['rare_for_folds']):,} have fewer rows than {s['folds']} folds, so some "
            "folds miss them"
        )
    if s["rare_for_test"]:
        why.append(
            f"{len(s['rare_for_test']):,} are too few for a proportional share of a "
            f"{s['test_size']:g} test split"
        )
    if s["single_row"]:
        why.append(f"{len(s['single_row']):,} sit on a single row, only ever on one side")
    return (
        f"First, {len(rare):,} label(s) are too rare to split: {'; '.join(why)} (e.g. "
        f"{_names_preview(rare, 4)}). No remedy can be measured on them: gather rows, merge or drop "
        "them, or split with `mlbalance split --ensure-eval-labels` (each label with >= 2 rows "
        "gets an evaluation row, one stays in training)."
    )


def advice(r: dict[str, Any]) -> list[dict[str, str]]:
    """What to do, as ``[{"rule": ..., "text": ...}]`` (the module docstring lists the rules).

    Rules: ``empty``, ``too-rare-to-split`` (always first when it applies), then one of
    ``balanced``, ``no-tail``, ``few-tail``, ``high-scumble``, ``long-tail``.
    """
    mean_ir = r["mean_ir"]
    if mean_ir is None:
        return [{"rule": "empty", "text": "No label has any row: there is nothing to balance."}]
    out = []
    warning = _split_warning(r)
    if warning:
        out.append({"rule": "too-rare-to-split", "text": warning})
    b = r["buckets"]
    present = max(r["labels"] - r["absent_labels"], 1)
    tail, share, sc = b["tail"], b["tail"] / present, r["scumble"]
    thresholds = (
        "tune a threshold per label on validation first, as `mlbalance train` does by default"
    )
    if mean_ir <= MEAN_IR_IMBALANCED:
        rule, text = (
            "balanced",
            f"Balanced (MeanIR {mean_ir:.2f} <= {MEAN_IR_IMBALANCED}): resampling is not "
            f"needed; {thresholds}.",
        )
    elif tail == 0 or share < LONG_TAIL_SHARE:
        rule = "no-tail" if tail == 0 else "few-tail"
        what = (
            f"No tail label (each has >= {b['tail_max']} rows)"
            if tail == 0
            else f"Only {tail:,} tail label(s) ({100 * share:.1f}% of the labels)"
        )
        text = (
            f"{what}: {thresholds}. In the recipe study on GoEmotions (28 labels, the rarest "
            "with 77 rows) thresholds took test macro F1 from 0.198 to 0.397 and no loss, "
            "sampler or resampling added more than the seed noise on top (BENCHMARKS.md)."
        )
        if tail:
            text += (
                " Tail labels have too few validation rows to tune: add "
                "`--threshold-fallback rare` (synthetic study: tail recall 0.060 -> 0.152)."
            )
        if sc > SCUMBLE_HIGH:
            text += (
                f" If you resample anyway, prefer REMEDIAL to ML-ROS: SCUMBLE {sc:.3f} > "
                f"{SCUMBLE_HIGH} means copied rows carry frequent labels too."
            )
    elif sc > SCUMBLE_HIGH:
        rule, text = (
            "high-scumble",
            f"{tail:,} tail label(s) and high concurrence (SCUMBLE {sc:.3f} > {SCUMBLE_HIGH}): "
            "rare labels share rows with frequent ones, so ML-ROS or MLSMOTE would copy head "
            "labels along (MLSMOTE raises MeanIR on MULAN cal500, scene and bibtex). Decouple "
            "those rows with `mlbalance resample --method remedial` (Charte et al. 2019) or "
            "sample rather than copy (`mlbalance train`'s default recipe, repeat-factor "
            "sampling); not ML-ROS.",
        )
    else:
        rule, text = (
            "long-tail",
            f"A long tail ({tail:,} labels under {b['tail_max']} rows, {100 * share:.0f}% of "
            f"the labels) with low concurrence (SCUMBLE {sc:.3f} <= {SCUMBLE_HIGH}): rows of "
            "rare labels seldom carry head labels, so rebalancing rows targets them. "
            "`mlbalance train`'s default recipe samples them (repeat-factor, threshold auto; "
            "fine-tuned on two long-tailed sets: +8-9 points of macro F1, one seed); "
            "`--recipe long-tail` puts tail recall first (class-aware sampling; synthetic "
            "study: tail recall 0.060 -> 0.184); or copy rows with `mlbalance resample "
            "--method ml-ros` (+0.6-0.7 macro F1 there).",
        )
    out.append({"rule": rule, "text": text})
    return out


def reading(r: dict[str, Any]) -> list[str]:
    """The summary's "Reading" lines: what the figures say, then :func:`advice`."""
    mean_ir, max_ir, cvir = r["mean_ir"], r["max_ir"], r["cvir"]
    b, s = r["buckets"], r["splits"]
    lines: list[str] = []
    if mean_ir is not None and mean_ir > MEAN_IR_IMBALANCED:
        how = "Strongly" if mean_ir > 10 else "Moderately"
        lines.append(
            f"{how} imbalanced: the average label has {mean_ir:,.1f}x fewer rows than the most "
            f"frequent one, the rarest {max_ir:,.0f}x fewer (CVIR {cvir:.2f})"
            + (f"; {b['tail']} tail label(s) have < {b['tail_max']} rows." if b["tail"] else ".")
        )
    if mean_ir is not None:
        sc = r["scumble"]
        level = "High" if sc > SCUMBLE_HIGH else "Low"
        where = (
            "rare labels share rows with frequent ones"
            if sc > SCUMBLE_HIGH
            else "rare labels mostly sit on their own rows"
        )
        lines.append(f"{level} label concurrence (SCUMBLE {sc:.3f}): {where}.")
    if s["absent"]:
        lines.append(
            f"{len(s['absent'])} label(s) have no row at all: {_names_preview(s['absent'])}."
        )
    if mean_ir is not None and not (s["rare_for_folds"] or s["rare_for_test"]):
        lines.append(
            "Every label has enough rows to reach each part of a "
            f"{s['folds']}-fold or {s['test_size']:g} test split."
        )
    steps = r.get("advice") or advice(r)
    for step in steps:
        lines.append(("Do: " if step["rule"] != "empty" else "") + step["text"])
    if mean_ir is not None:
        lines.append(
            "Order: split first (`mlbalance split`, iterative stratification), then apply the "
            "step above to the training part only."
        )
    return lines
