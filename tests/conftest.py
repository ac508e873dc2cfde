"""Test configuration: Hypothesis profiles and shared fixtures.

Profiles (select with MINIGEN_HYPOTHESIS_PROFILE, default ``ci``):
- ``ci``: few examples per property, so the whole suite stays within its CI budget;
- ``intense``: 500 examples per property (``MINIGEN_HYPOTHESIS_PROFILE=intense pytest``).
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                      HealthCheck.data_too_large], derandomize=False)
settings.register_profile("ci", max_examples=12, **_common)
settings.register_profile("intense", max_examples=500, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.load_profile(os.environ.get("MINIGEN_HYPOTHESIS_PROFILE", "ci"))

SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def _has_torch():
    try:
        import torch  # noqa: F401
        return True
    except Exception:
        return False


HAS_TORCH = _has_torch()
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (optional oracle)")


@pytest.fixture(autouse=True)
def _seed():
    import minigen as mg

    mg.manual_seed(0)
    np.random.seed(0)
    yield
