"""predict decides labels on the float32 scores it stores, exactly as a float64 comparison."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from mlbalance.train.predictor import _float32_ceiling


def test_float32_ceiling_matches_float64_comparison_on_boundaries():
    rng = np.random.default_rng(0)
    t = rng.random(20_000)
    s = rng.random(20_000).astype(np.float32)
    s[:10_000] = t[:10_000].astype(np.float32)  # scores that round onto their threshold
    exact = s.astype(np.float64) >= t
    assert np.array_equal(s >= _float32_ceiling(t), exact)
    assert not np.array_equal(s >= t.astype(np.float32), exact)  # the naive cast flips some


def test_scalar_threshold():
    assert _float32_ceiling(0.5).dtype == np.float32
    assert float(_float32_ceiling(0.5)) == 0.5
    assert float(_float32_ceiling(0.1)) >= 0.1
