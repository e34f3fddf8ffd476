"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("MLBALANCE_SHARED", ROOT.parent / "shared")) / "datasets"
MULAN_SETS = (
    "bibtex",
    "birds",
    "cal500",
    "emotions",
    "enron",
    "flags",
    "genbase",
    "medical",
    "scene",
    "yeast",
)

os.environ.setdefault("MLBALANCE_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module's tests (``pytestmark = usefixtures(...)``): fast
    and stable on a shared 2-core machine; the caller's count comes back afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``; skips the test with a reason when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS} (set MLBALANCE_SHARED)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def goemotions_dir(shared_datasets: Path) -> Path:
    """``../shared/datasets/goemotions``; skips when absent."""
    path = shared_datasets / "goemotions"
    if not path.is_dir():
        pytest.skip(f"GoEmotions not found at {path}")
    return path


# Hypothesis: CI (CI=true) runs derandomized with no example database, so a run's outcome does
# not depend on a random draw or on failures replayed from an earlier run in the same checkout.
# Locally the default profile explores new examples each run (a failure found there is a bug).
# Neither profile times anything: no per-example deadline and no "too slow" health check, whose
# outcome depends on how busy the machine is, not on the code.
try:
    from hypothesis import HealthCheck as _HealthCheck
    from hypothesis import settings as _hyp_settings

    _untimed = {"deadline": None, "suppress_health_check": [_HealthCheck.too_slow]}
    _hyp_settings.register_profile("local", **_untimed)
    _hyp_settings.register_profile(
        "ci", derandomize=True, database=None, print_blob=True, **_untimed
    )
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    _hyp_settings.load_profile("ci" if ci else "local")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
