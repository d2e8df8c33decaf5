"""Shared helpers. Statistical tests use fixed master seeds, so they are deterministic; each
states the confidence its verdict is taken at."""
import numpy as np
import pytest

import theory_lab as tl


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def has_cuda() -> bool:
    if not has_torch():
        return False
    import torch
    return torch.cuda.is_available()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def ids(params):
    return [f"{k}={v}" for k, v in params]


__all__ = ["tl", "has_torch", "has_cuda"]
