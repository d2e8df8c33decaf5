"""The batched runner: determinism, seed independence, baselines, and lam^p's prediction."""
import numpy as np
import pytest

import theory_lab as tl


def test_same_seed_same_numbers_and_seed_k_independent_of_count():
    pr = tl.make_problem("least-squares", m=6, n=5, n_samples=20)
    me = tl.Method("bernoulli-lora-sgd", p=0.4, rank=2, batch=3)
    a = tl.run(pr, me, iters=25, seeds=3, seed=9).metric("f_gap")
    b = tl.run(pr, me, iters=25, seeds=3, seed=9).metric("f_gap")
    c = tl.run(pr, me, iters=25, seeds=8, seed=9).metric("f_gap")
    d = tl.run(pr, me, iters=25, seeds=2, seed=9, seed_offset=1).metric("f_gap")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c[:3])
    np.testing.assert_array_equal(a[1:], d)
    e = tl.run(pr, me, iters=25, seeds=3, seed=10).metric("f_gap")
    assert not np.allclose(a[:, -1], e[:, -1])


def test_checkpoints_include_zero_and_last_and_metrics_are_consistent():
    pr = tl.make_problem("quadratic-iso", m=4, n=3)
    res = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=1), iters=5000, seeds=4)
    t = res.checkpoints
    assert t[0] == 0 and t[-1] == 5000 and len(t) < 400
    # f = 1/2 ||W - W*||^2: grad_sq = 2 f_gap = dist_sq exactly
    np.testing.assert_allclose(res.metric("grad_sq"), 2 * res.metric("f_gap"), rtol=1e-12)
    np.testing.assert_allclose(res.metric("dist_sq"), res.metric("grad_sq"), rtol=1e-12)
    frame = res.to_frame()
    assert len(frame) == 4 * len(t) and {"seed", "iteration", "f_gap", "p", "rank"} <= set(frame.columns)


def test_avg_grad_sq_is_the_running_mean():
    pr = tl.make_problem("linreg-noncvx", m=3, n=3, n_samples=30)
    res = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=1), iters=40, seeds=3)
    g = res.metric("grad_sq")
    np.testing.assert_allclose(res.metric("avg_grad_sq")[:, 1:], np.cumsum(g, axis=1)[:, :-1] / np.arange(1, 41),
                               rtol=1e-12)


def test_full_gd_and_rank_full_sketch_are_gradient_descent():
    """gd is W <- W - gamma grad f; a sketch of rank r = d gives H = I (docs/THEORY.md 1.2)."""
    pr = tl.make_problem("kron-quadratic", m=4, n=4)
    gamma = 1 / pr.L
    W = pr.W0.copy()
    path = [pr.f_gap_host(W)]
    for _ in range(10):
        W = W - gamma * pr.grad_host(W)
        path.append(pr.f_gap_host(W))
    full = tl.run(pr, tl.Method("gd"), iters=10, seeds=2).metric("f_gap")
    sketched = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=4), iters=10, seeds=2).metric("f_gap")
    np.testing.assert_allclose(full[0], path, rtol=1e-12)
    np.testing.assert_allclose(sketched[1], path, rtol=1e-10)


def test_smaller_side_sketch_converges_faster_on_rectangular_W():
    """m = 6 < n = 24, r = 2: lam^1 = r/m = 1/3 > lam^0 = r/n = 1/12, so p = 1 (project the smaller
    side) converges faster; at gamma = 1 the iso quadratic gives E f_T = (1 - lam)^T f0 exactly."""
    pr = tl.make_problem("quadratic-iso", m=6, n=24, seed=3)
    T, S = 20, 500
    means = {p: tl.run(pr, tl.Method("bernoulli-lora-gd", p=p, rank=2), iters=T, seeds=S).metric("f_gap")[:, -1]
             for p in (0.0, 0.5, 1.0)}
    assert means[1.0].mean() < means[0.5].mean() < means[0.0].mean()
    for p, lam in [(1.0, 1 / 3), (0.0, 1 / 12)]:
        expected = (1 - lam) ** T * pr.delta0
        se = means[p].std(ddof=1) / np.sqrt(S)
        assert abs(means[p].mean() - expected) < 4 * se + 1e-12


def test_rac_lora_is_one_sided_and_degenerate_sketches_stall():
    pr = tl.make_problem("least-squares", m=8, n=12, n_samples=40)
    # both sides degenerate: lam = 0, the method cannot leave the fixed subspace (negative control)
    stall = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2, sketch="degenerate", stepsize=0.1),
                   iters=2000, seeds=4)
    assert stall.lam_min == 0 and stall.metric("f_gap")[:, -1].min() > 1.0
    ok = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2, sketch="degenerate/gaussian", stepsize=0.1),
                iters=2000, seeds=4)
    assert ok.metric("grad_sq")[:, -1].max() < 1e-10
    with pytest.raises(tl.InputError, match="^p:"):
        tl.Method("rac-lora", p=0.5)
    assert tl.Method("rac-lora").p == 1.0


def test_divergence_is_reported_not_raised():
    pr = tl.make_problem("least-squares", m=4, n=3, n_samples=10)
    res = tl.run(pr, tl.Method("gd", stepsize=10.0), iters=600, seeds=3)
    assert res.diverged() == 3
    rep = tl.check(pr, tl.Method("gd", stepsize=10.0), iters=600, seeds=3)
    assert rep.verdict == "not-applicable" and rep.diverged == 3
