"""The counter-based streams: distribution, independence, and independence from the seed count."""
import numpy as np
import pytest
from scipy import stats

from theory_lab.backend import get_backend
from theory_lab.backend.random import Streams

from helpers import has_torch


def streams(S=64, master=3, offset=0, backend="numpy"):
    return Streams(get_backend(backend), master, np.arange(offset, offset + S))


def test_uniform_is_uniform_ks():
    u = streams(S=50).uniform("coin", 7, (2000,)).ravel()      # 100,000 draws
    assert 0 <= u.min() and u.max() < 1
    # Kolmogorov-Smirnov at 1%: fails with probability 0.01 for a true uniform (fixed seed: deterministic)
    assert stats.kstest(u, "uniform").pvalue > 0.01


def test_normal_moments_and_ks():
    z = streams(S=50).normal("sketch", 11, (2001,)).ravel()    # odd size exercises the pair split
    assert z.shape == (50 * 2001,)
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 4 * se                 # 4 standard errors
    assert abs(z.var() - 1) < 4 * np.sqrt(2) * se
    assert stats.kstest(z, "norm").pvalue > 0.01


def test_streams_are_uncorrelated_across_seeds_sources_and_steps():
    st = streams(S=200)
    a = st.normal("sketch", 0, (500,))
    b = st.normal("noise", 0, (500,))
    c = st.normal("sketch", 1, (500,))
    n = a.size
    for x, y in [(a, b), (a, c), (a[:-1], a[1:])]:
        r = np.corrcoef(x.ravel(), y.ravel())[0, 1]
        assert abs(r) < 4 / np.sqrt(n)           # |corr| under 4 sigma of the null


def test_seed_k_does_not_depend_on_seed_count():
    small = streams(S=3).normal("sketch", 5, (4, 2))
    large = streams(S=10).normal("sketch", 5, (4, 2))
    shifted = streams(S=4, offset=2).normal("sketch", 5, (4, 2))
    np.testing.assert_array_equal(small, large[:3])
    np.testing.assert_array_equal(shifted[0], large[2])


def test_master_seed_changes_everything():
    a = Streams(get_backend("numpy"), 1, np.arange(5)).uniform("coin", 0, (10,))
    b = Streams(get_backend("numpy"), 2, np.arange(5)).uniform("coin", 0, (10,))
    assert not np.any(a == b)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_torch_streams_are_bit_identical_to_numpy():
    wn = streams(S=8).bits("sampling", 3, 100)
    wt = streams(S=8, backend="torch").bits("sampling", 3, 100).numpy()
    np.testing.assert_array_equal(wn, wt)
    zn = streams(S=8).normal("sketch", 3, (5, 3))
    zt = streams(S=8, backend="torch").normal("sketch", 3, (5, 3)).numpy()
    np.testing.assert_allclose(zn, zt, rtol=1e-14, atol=1e-14)
