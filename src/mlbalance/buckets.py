"""Head / medium / tail buckets of labels by their row counts.

The convention of long-tail recognition (e.g. LVIS's frequent / common / rare): a label is
*head* with more than ``head_min`` rows, *tail* with fewer than ``tail_max`` rows, and
*medium* otherwise. mlbalance's defaults: head > 100 rows, medium 20-100, tail < 20.
"""

from __future__ import annotations

import numpy as np

from mlbalance.errors import ParameterError

__all__ = [
    "BUCKETS",
    "DEFAULT_HEAD_MIN",
    "DEFAULT_TAIL_MAX",
    "HEAD_MIN_HELP",
    "TAIL_MAX_HELP",
    "label_buckets",
]

BUCKETS: tuple[str, str, str] = ("head", "medium", "tail")
DEFAULT_HEAD_MIN = 100
DEFAULT_TAIL_MAX = 20
#: What the bounds mean, in the words of every command that takes them (``analyse``, ``train``,
#: ``evaluate``: the counts are the training rows of a model's labels).
HEAD_MIN_HELP = "a label with more than this many rows is head (a model's: training rows)"
TAIL_MAX_HELP = "a label with fewer than this many rows is tail (a model's: training rows)"


def label_buckets(
    counts: np.ndarray, head_min: int = DEFAULT_HEAD_MIN, tail_max: int = DEFAULT_TAIL_MAX
) -> np.ndarray:
    """Bucket name per label.

    Parameters
    ----------
    counts : array of int
        Rows per label (``LabelMatrix.counts()``), normally of the training data.
    head_min : int, default 100
        A label with more than ``head_min`` rows is ``"head"``.
    tail_max : int, default 20
        A label with fewer than ``tail_max`` rows is ``"tail"``; the rest are ``"medium"``.

    Returns
    -------
    numpy.ndarray of str
        ``"head"``, ``"medium"`` or ``"tail"`` for each label.
    """
    if tail_max < 0 or head_min < tail_max:
        raise ParameterError(
            f"bucket bounds must satisfy 0 <= tail_max <= head_min, got tail_max={tail_max}, "
            f"head_min={head_min}",
            param=("tail_max", "head_min"),
        )
    counts = np.asarray(counts)
    out = np.full(counts.shape, "medium", dtype=object)
    out[counts > head_min] = "head"
    out[counts < tail_max] = "tail"
    return out.astype(str)
