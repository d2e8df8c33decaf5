"""Fixtures. Statistical tests use fixed master seeds, so they are deterministic; each states the
confidence its verdict is taken at. Shared helpers live in ``helpers.py``."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True, scope="session")
def _problem_cache(tmp_path_factory):
    """Tests never read or write the user's problem cache: one fresh cache folder per session."""
    from theory_lab.problems import cache

    cache.configure(directory=tmp_path_factory.mktemp("problem-cache"))
    yield
