"""LoRA baselines on the RAC-LoRA counter-example (docs/THEORY.md 3(g), Appendix A)."""
import numpy as np
import pytest

import theory_lab as tl

from helpers import TRUE_CONFIDENCE


def cex():
    return tl.make_problem("lora-counterexample")


def test_counterexample_constants_and_gradient(rng):
    pr = cex()
    assert (pr.L, pr.mu, pr.f_star) == (10.0, 1.0, 0.0)
    W = rng.standard_normal((3, 3))
    V = rng.standard_normal((3, 3))
    h = 1e-6
    fd = (pr.f_value_host(W + h * V) - pr.f_value_host(W - h * V)) / (2 * h)
    assert fd == pytest.approx(np.sum(pr.grad_host(W) * V), rel=1e-7)


def test_joint_lora_rank1_cannot_reach_f_star():
    """Every rank-1 W has f(W) >= 1/2 ||W - W*||^2 >= 1/2 (s2^2 + s3^2) (q >= 1, Eckart-Young)."""
    pr = cex()
    s = np.linalg.svd(pr.W_star, compute_uv=False)
    floor = 0.5 * (s[1] ** 2 + s[2] ** 2)
    res = tl.run(pr, tl.Method("lora", rank=1, init_scale=0.3), iters=300, seeds=100)
    final = res.metric("f_gap")[:, -1]
    assert res.diverged() == 0 and np.all(final >= floor * (1 - 1e-12))


def test_joint_lora_divergence_grows_with_init_scale():
    """gamma = 1/L: the factored objective is not L-smooth, so large A^0 diverges (Appendix A: 0, 11, 91 of
    200 at s = 0.3, 1, 2). Fixed master seed; the counts are deterministic."""
    pr = cex()
    counts = [tl.run(pr, tl.Method("lora", rank=1, init_scale=s, stepsize=1 / pr.L), iters=200, seeds=200).diverged()
              for s in (0.3, 1.0, 2.0)]
    assert counts[0] == 0 and counts[0] < counts[1] < counts[2] and counts[2] >= 40


def test_bernoulli_lora_satisfies_gd_pl_with_lambda_one_third_for_every_p():
    for p in (0.0, 0.5, 1.0):
        rep = tl.check(cex(), tl.Method("bernoulli-lora-gd", p=p, rank=1), iters=100, seeds=500, seed=1,
                       confidence=TRUE_CONFIDENCE)
        assert rep.theorem == "GD-PL" and rep.verdict == "holds" and rep.lam_min == pytest.approx(1 / 3)


def test_asymm_lora_stalls_and_cola_reaches_the_optimum():
    pr = cex()
    asym = tl.run(pr, tl.Method("asymm-lora", rank=1), iters=400, seeds=20).metric("f_gap")
    assert tl.Method("asymm-lora", rank=1).lam(pr)[0] == 0.0
    np.testing.assert_allclose(asym[:, -1], asym[:, 200], rtol=1e-9)        # stalled in its fixed subspace
    assert asym[:, -1].min() > 0.1
    cola = tl.run(pr, tl.Method("cola", rank=1, link_steps=10, init_scale=0.3, stepsize=1 / pr.L), iters=2000,
                  seeds=20)
    assert cola.diverged() == 0 and cola.metric("f_gap")[:, -1].max() < 1e-6 * pr.delta0
    rep = tl.check(pr, tl.Method("lora", rank=1), iters=5, seeds=4)
    assert rep.verdict == "not-applicable"
