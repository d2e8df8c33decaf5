"""Fixtures. Statistical tests use fixed master seeds, so they are deterministic; each states the
confidence its verdict is taken at. Shared helpers live in ``helpers.py``."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
