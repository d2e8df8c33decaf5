"""Sketch laws: E[H] by Monte Carlo against the stated values, idempotence, factor view, Lemma 1."""
import numpy as np
import pytest

import theory_lab as tl
from theory_lab.backend import get_backend
from theory_lab.backend.random import Streams
from theory_lab.sketches import (expected_rank_rademacher, get_sketch, monte_carlo_EH, project_left,
                                 project_right, trained_factor)

LAWS = [("gaussian", {}), ("orthogonal", {}), ("coordinate", {}), ("rademacher", {}),
        ("stratified", {"groups": [2, 6]})]


@pytest.mark.parametrize("name,params", LAWS, ids=[n for n, _ in LAWS])
@pytest.mark.parametrize("r", [1, 2, 3])
def test_monte_carlo_EH_matches_stated_value(name, params, r):
    d = 8
    if name == "stratified" and r != 2:
        params = {}
    sk = get_sketch(name, **params)
    E_hat, eps = monte_carlo_EH(sk, d, r, draws=40_000, seed=r, delta=0.01)
    stated = np.diag(sk.expected_H_diag(d, r))
    err = np.linalg.norm(E_hat - stated, 2)
    # matrix Bernstein (docs/THEORY.md 2): ||E_hat - E H||_2 <= eps with probability >= 99%
    tol = eps + (sk.moments(d, r).err if name == "rademacher" else 0.0)
    assert err <= tol, (err, tol)
    m = sk.moments(d, r)
    ev = np.linalg.eigvalsh(stated)
    assert m.lam_min == pytest.approx(ev[0]) and m.lam_max == pytest.approx(ev[-1])


def test_rademacher_expected_rank_closed_forms():
    assert expected_rank_rademacher(8, 1) == (1.0, 0.0)
    assert expected_rank_rademacher(8, 2) == (2 - 2 ** -7, 0.0)
    er, err = expected_rank_rademacher(8, 3)
    assert abs(er - 2.976) < max(err, 0.01)      # docs/THEORY.md 2: E rank = 2.976 for d = 8, r = 3


@pytest.mark.parametrize("name", ["gaussian", "orthogonal", "coordinate", "rademacher", "stratified",
                                  "degenerate"])
def test_H_is_an_idempotent_projection_of_rank_r(name):
    bk = get_backend("numpy")
    st = Streams(bk, 0, np.arange(50))
    d, r = 7, 3
    sk = get_sketch(name)
    Q = sk.basis(sk.sample(st, 0, d, r), bk.xp)
    H = np.stack([np.diag(q) for q in Q]) if sk.diagonal else Q @ np.swapaxes(Q, 1, 2)
    np.testing.assert_allclose(H @ H, H, atol=1e-12)
    np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), atol=1e-12)
    ranks = np.trace(H, axis1=1, axis2=2)
    if name == "rademacher":
        assert np.all((ranks > 0.5) & (ranks < r + 1e-9))
    else:
        np.testing.assert_allclose(ranks, r, atol=1e-10)


@pytest.mark.parametrize("name", ["gaussian", "coordinate", "rademacher"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_factor_view_equals_projected_step(name, side, rng):
    """The closed-form trained factor (docs/THEORY.md 1.2) merges into exactly -gamma S_t(G)."""
    bk = get_backend("numpy")
    st = Streams(bk, 1, np.arange(6))
    m, n, r, gamma, alpha = 6, 5, 2, 0.3, 4.0
    G = rng.standard_normal((6, m, n))
    sk = get_sketch(name, side)
    d = m if side == "left" else n
    factor = sk.sample(st, 0, d, r)
    basis = sk.basis(factor, bk.xp)
    proj = project_left(basis, G, sk.diagonal) if side == "left" else project_right(basis, G, sk.diagonal)
    dense = sk.dense(factor)
    for s in range(6):
        trained, merged = trained_factor(dense[s], G[s], gamma, side, alpha)
        assert trained.shape == ((r, n) if side == "left" else (m, r))
        np.testing.assert_allclose(merged, -gamma * proj[s], atol=1e-12)


def test_lambda_min_gaussian_formula():
    # lam^p = p r/m + (1-p) r/n (docs/THEORY.md 1.3) for isotropic laws
    assert tl.lambda_min("gaussian", m=8, n=12, rank=2, p=0.5) == pytest.approx(0.5 * 2 / 8 + 0.5 * 2 / 12)
    assert tl.lambda_max("gaussian", m=8, n=12, rank=2, p=0.3) == pytest.approx(0.3 / 4 + 0.7 / 6)
    # stratified with groups {2,6} and {3,9}: lam = p/6 + (1-p)/9, Lam = p/2 + (1-p)/3 (Appendix A)
    lam, Lam = (tl.lambda_min("stratified", 8, 12, 2, 0.4, left_groups=[2, 6], right_groups=[3, 9]),
                tl.lambda_max("stratified", 8, 12, 2, 0.4, left_groups=[2, 6], right_groups=[3, 9]))
    assert lam == pytest.approx(0.4 / 6 + 0.6 / 9) and Lam == pytest.approx(0.4 / 2 + 0.6 / 3)
    # degenerate B side: lam = (1-p) lam(E H_A) (docs/THEORY.md 2)
    assert tl.lambda_min("degenerate/gaussian", 8, 12, 2, 0.5) == pytest.approx(0.5 * 2 / 12)


def test_lemma1_spectrum_of_lifted_operator():
    """M_p = p (I_n kron E H_B) + (1-p)(E H_A kron I_m) has extremes p lam_B + (1-p) lam_A."""
    m, n, r, p = 8, 12, 2, 0.35
    left, right = get_sketch("stratified", groups=[2, 6]), get_sketch("stratified", "right", groups=[3, 9])
    EB, EA = np.diag(left.expected_H_diag(m, r)), np.diag(right.expected_H_diag(n, r))
    # a non-diagonal E H: rotate both (Lemma 1 holds for any symmetric E H)
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    EB, EA = U @ EB @ U.T, V @ EA @ V.T
    M = p * np.kron(np.eye(n), EB) + (1 - p) * np.kron(EA, np.eye(m))
    ev = np.linalg.eigvalsh(M)
    lam, Lam = tl.lambda_min("stratified", m, n, r, p, left_groups=[2, 6], right_groups=[3, 9]), \
        tl.lambda_max("stratified", m, n, r, p, left_groups=[2, 6], right_groups=[3, 9])
    assert ev[0] == pytest.approx(lam, abs=1e-12) and ev[-1] == pytest.approx(Lam, abs=1e-12)
