"""Compressors: their constants by Monte Carlo (unbiasedness, omega, alpha) and their bit counts."""
import math

import numpy as np
import pytest

from theory_lab.backend import get_backend
from theory_lab.backend.random import Streams
from theory_lab.compressors import make_compressor


def draws(comp, X, K=20000, seed=0):
    """K independent compressions of the same X (one per seed), as an array (K, m, n)."""
    bk = get_backend("numpy")
    st = Streams(bk, seed, np.arange(K))
    return comp.compress(np.broadcast_to(X, (K, 1) + X.shape).copy(), st, 0)[:, 0]


@pytest.mark.parametrize("name,params", [("randk", {"k": 5}), ("dither", {"s": 2}), ("identity", {})])
def test_unbiased_compressors_mean_and_omega(name, params):
    X = np.random.default_rng(1).standard_normal((4, 6))
    comp = make_compressor(name, **params)
    d = X.size
    Q = draws(comp, X)
    se = Q.std(axis=0, ddof=1) / math.sqrt(len(Q)) + 1e-12      # + rounding of the mean
    assert np.all(np.abs(Q.mean(axis=0) - X) <= 5 * se)                 # E Q(X) = X, entrywise 5 SE
    err = np.sum((Q - X) ** 2, axis=(1, 2))
    om = comp.omega(d)
    assert err.mean() <= om * np.sum(X ** 2) + 4 * err.std() / math.sqrt(len(err)) + 1e-12
    if name == "randk":
        assert om == d / 5 - 1                                          # omega = d/k - 1, attained
        assert err.mean() == pytest.approx(om * np.sum(X ** 2), rel=0.03)
        assert np.all(np.count_nonzero(Q, axis=(1, 2)) == 5)


def test_topk_is_contractive_with_alpha_k_over_d():
    rng = np.random.default_rng(2)
    comp = make_compressor("topk", k=6)
    X = rng.standard_normal((50, 1, 4, 6))
    C = comp.compress(X, Streams(get_backend("numpy"), 0, np.arange(50)), 0)
    alpha = comp.alpha(24)
    assert alpha == 0.25
    assert np.all(np.sum((C - X) ** 2, axis=(-2, -1)) <= (1 - alpha) * np.sum(X ** 2, axis=(-2, -1)) + 1e-12)
    kept = np.abs(C[..., :, :]).reshape(50, -1) > 0
    flat = np.abs(X).reshape(50, -1)
    assert np.all(np.sort(flat, axis=1)[:, -6:].min(axis=1) <= np.where(kept, flat, np.inf).min(axis=1))


def test_bits():
    assert make_compressor("randk", k=24).bits(96) == 24 * (32 + 7)
    assert make_compressor("identity").bits(96) == 32 * 96
    assert make_compressor("dither", s=3).bits(96) == 32 + 96 * (1 + 2)
