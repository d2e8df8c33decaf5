"""Certification of every problem family: gradient vs central differences, curvature <= L,
the PL inequality where claimed, and the optimum's constants."""
import numpy as np
import pytest

import theory_lab as tl

FAMILIES = [
    ("quadratic-iso", dict(m=5, n=4)),
    ("kron-quadratic", dict(m=5, n=4)),
    ("least-squares", dict(m=6, n=4, n_samples=30, cond=20)),
    ("linreg-noncvx", dict(m=3, n=4, n_samples=50)),
    ("linreg-noncvx", dict(m=3, n=4, n_samples=200, lam_r=0.1)),   # small lam_r: strongly convex, PL
    ("softmax-regression", dict(m=4, n=3, n_samples=50)),            # l2: PL with mu = nu
    ("softmax-regression", dict(m=4, n=3, n_samples=50, reg="noncvx", lam_r=0.2)),
]
IDS = [f"{f}-{i}" for i, (f, _) in enumerate(FAMILIES)]


def points(problem, rng, k=6):
    """Random points around W0 and W* at several scales."""
    base = [problem.W0] + ([problem.W_star] if problem.W_star is not None else [])
    return [b + s * rng.standard_normal(b.shape) for b in base for s in (0.1, 1.0, 3.0)][:k]


@pytest.mark.parametrize("family,params", FAMILIES, ids=IDS)
def test_gradient_matches_central_differences(family, params, rng):
    pr = tl.make_problem(family, seed=1, **params)
    for W in points(pr, rng):
        g = pr.grad_host(W)
        for _ in range(3):
            V = rng.standard_normal(W.shape)
            h = 1e-5
            fd = (pr.f_value_host(W + h * V) - pr.f_value_host(W - h * V)) / (2 * h)
            scale = max(1.0, abs(fd))
            assert abs(fd - np.sum(g * V)) < 1e-6 * scale * (1 + np.linalg.norm(V))


@pytest.mark.parametrize("family,params", FAMILIES, ids=IDS)
def test_curvature_never_exceeds_L(family, params, rng):
    pr = tl.make_problem(family, seed=2, **params)
    worst = 0.0
    for W in points(pr, rng):
        for _ in range(20):
            V = rng.standard_normal(W.shape)
            h = 1e-3 * (1 + rng.random())
            curv = np.sum((pr.grad_host(W + h * V) - pr.grad_host(W)) * V) / (h * np.sum(V * V))
            lip = np.linalg.norm(pr.grad_host(W + h * V) - pr.grad_host(W)) / (h * np.linalg.norm(V))
            worst = max(worst, curv, lip)
    assert worst <= pr.L * (1 + 1e-6)


@pytest.mark.parametrize("family,params", [fp for fp in FAMILIES], ids=IDS)
def test_pl_inequality_where_claimed(family, params, rng):
    pr = tl.make_problem(family, seed=3, **params)
    if not pr.is_pl:
        assert params.get("reg") == "noncvx" or (family == "linreg-noncvx" and params.get("lam_r") is None)
        return
    for W in points(pr, rng, k=6) + [pr.W_star + 1e-3 * rng.standard_normal(pr.W0.shape)
                                     if pr.W_star is not None else pr.W0]:
        g = pr.grad_host(W)
        gap = pr.f_gap_host(W)
        assert gap >= -1e-12
        assert np.sum(g * g) >= 2 * pr.mu * gap * (1 - 1e-9) - 1e-12


def test_least_squares_optimum_and_constants(rng):
    pr = tl.make_problem("least-squares", m=6, n=4, n_samples=30, cond=20, L=5, noise=0.7, seed=4)
    assert np.linalg.norm(pr.grad_host(pr.W_star)) < 1e-10
    assert pr.f_star > 0                                     # noisy targets: f* > 0
    ev = np.linalg.eigvalsh(pr.Sigma)
    assert ev[-1] == pytest.approx(5) and ev[0] == pytest.approx(5 / 20)     # prescribed spectrum
    # mean-square smoothness: mean_i ||grad f_i(X) - grad f_i(Y)||^2 <= L_tilde^2 ||X - Y||^2, and L_pm <= L_tilde
    X, Y = rng.standard_normal((2, 6, 4))
    D = X - Y
    diffs = np.stack([np.outer(x, x @ D) for x in pr.X])
    assert np.mean(np.sum(diffs ** 2, axis=(1, 2))) <= pr.L_tilde ** 2 * np.sum(D * D) * (1 + 1e-9)
    var = np.mean(np.sum((diffs - diffs.mean(0)) ** 2, axis=(1, 2)))
    assert var <= pr.L_pm ** 2 * np.sum(D * D) * (1 + 1e-9)
    assert pr.L_pm <= pr.L_tilde <= pr.L_max


def test_minibatch_gradient_is_unbiased():
    """Averaging the minibatch gradient over all indices gives the full gradient (exact)."""
    for family, params in [("least-squares", dict(m=4, n=3, n_samples=10)),
                           ("linreg-noncvx", dict(m=2, n=3, n_samples=10))]:
        pr = tl.make_problem(family, **params).bind("numpy")
        W = np.random.default_rng(0).standard_normal((1, pr.m, pr.n))
        full = pr.minibatch_grad(W, np.arange(pr.n_samples)[None])
        np.testing.assert_allclose(full, pr.grad(W), atol=1e-10)


def test_kron_and_iso_constants():
    pr = tl.make_problem("kron-quadratic", m=5, n=4, p_spec=[1, 3], r_spec=[1, 2])
    assert (pr.L, pr.mu) == (6.0, 1.0)
    iso = tl.make_problem("quadratic-iso", m=3, n=2)
    assert iso.delta0 == pytest.approx(0.5 * np.sum(iso.W_star ** 2))


def test_load_named_instances(rng):
    """Every problems/*.toml builds the family and parameters it names, and its attached L is a true
    smoothness constant: secant ratios ||grad X - grad Y|| / ||X - Y|| at random pairs stay below it.
    The paper instance (minutes to build) is built with its own parameters at a small size."""
    import pathlib
    import tomllib
    root = pathlib.Path(__file__).resolve().parents[1] / "problems"
    files = sorted(root.glob("*.toml"))
    assert "paper_linreg.toml" in {f.name for f in files}
    for path in files:
        spec = tomllib.loads(path.read_text())
        spec.pop("description", None)
        family = spec.pop("family")
        if path.name == "paper_linreg.toml":
            spec.update(m=4, n=4, n_samples=300, pretrain_samples=500)
            pr = tl.make_problem(family, **spec)
        else:
            pr = tl.load_problem(path)
        assert pr.family == family and (pr.m, pr.n) == (spec.get("m", pr.m), spec.get("n", pr.n))
        for key, val in spec.items():
            if key not in ("m", "n", "seed"):
                assert pr.params[key] == val, (path.name, key)
        if pr.smooth:
            X = rng.standard_normal((32, pr.m, pr.n)) * 3
            Y = X + rng.standard_normal((32, pr.m, pr.n)) * 0.1
            b = pr.bind(tl.get_backend("numpy"))
            ratio = np.linalg.norm((b.grad(X) - b.grad(Y)).reshape(32, -1), axis=1) / \
                np.linalg.norm((X - Y).reshape(32, -1), axis=1)
            assert ratio.max() <= pr.L * (1 + 1e-9), path.name


def test_l1_regression_subgradients(rng):
    """Non-smooth family: subgradient = gradient off kinks (central differences), convexity inequality,
    ||g|| <= L_0, and homogeneity <g, W - W*> = f(W) - f* (docs/THEORY.md 3(f))."""
    pr = tl.make_problem("l1-regression", m=5, n=4, n_samples=30, seed=2)
    assert pr.f_gap_host(pr.W_star) == 0.0
    for _ in range(10):
        W = pr.W_star + rng.standard_normal(pr.W0.shape)
        g = pr.grad_host(W)
        V = rng.standard_normal(W.shape)
        h = 1e-7
        fd = (pr.f_value_host(W + h * V) - pr.f_value_host(W - h * V)) / (2 * h)
        assert abs(fd - np.sum(g * V)) < 1e-6
        assert np.linalg.norm(g) <= pr.L_0
        assert np.sum(g * (W - pr.W_star)) == pytest.approx(pr.f_gap_host(W), rel=1e-12)
        W2 = W + rng.standard_normal(W.shape)
        assert pr.f_value_host(W2) >= pr.f_value_host(W) + np.sum(g * (W2 - W)) - 1e-12


def test_client_shards_and_constants(rng):
    pr = tl.make_problem("least-squares", m=4, n=3, n_samples=40, clients=4, split="heterogeneous").bind("numpy")
    W = rng.standard_normal((2, 4, 3))
    cg = pr.client_grads(W)
    assert cg.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(cg.mean(axis=1), pr.grad(W), atol=1e-12)      # equal shards: mean f_i = f
    # mean-square smoothness over clients: mean_i ||grad f_i(X) - grad f_i(Y)||^2 <= L_tilde^2 ||X - Y||^2
    X, Y = rng.standard_normal((2, 1, 4, 3))
    D = pr.client_grads(X) - pr.client_grads(Y)
    assert np.mean(np.sum(D ** 2, axis=(-2, -1))) <= pr.client_L_tilde ** 2 * np.sum((X - Y) ** 2) * (1 + 1e-9)
    assert pr.client_delta_inf >= 0 and pr.client_L_tilde <= pr.client_L_max + 1e-12
    with pytest.raises(tl.InputError, match="^clients:"):
        tl.make_problem("least-squares", m=4, n=3, n_samples=40, clients=3)
