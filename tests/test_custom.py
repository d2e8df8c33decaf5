"""Bring your own problem: custom objectives in numpy (with grad) and torch (autograd), certified
gradients and constants, checks on them, refuted claims refused, and every built-in family certified."""
import json

import numpy as np
import pytest

import theory_lab as tl
from theory_lab.cli import main

from helpers import TRUE_CONFIDENCE, has_torch

M, N = 4, 3
RNG = np.random.default_rng(0)
_A = RNG.standard_normal((M, M))
P = _A @ _A.T / M + 0.5 * np.eye(M)           # f(W) = 1/2 <W - C, P (W - C)>: L = max eig P, mu = min eig P
C = RNG.standard_normal((M, N))
L_TRUE, MU_TRUE = float(np.linalg.eigvalsh(P).max()), float(np.linalg.eigvalsh(P).min())


def f_np(W):
    D = W - C
    return 0.5 * np.einsum("sij,ik,skj->s", D, P, D)


def grad_np(W):
    return np.einsum("ik,skj->sij", P, W - C)


def numpy_quadratic(L=L_TRUE, grad=grad_np):
    return tl.custom_problem(f_np, grad, shape=(M, N), L=L, mu=MU_TRUE, f_star=0.0, name="numpy quadratic")


def torch_quadratic():
    import torch
    Pt, Ct = torch.tensor(P), torch.tensor(C)
    return tl.custom_problem(lambda W: 0.5 * torch.einsum("sij,ik,skj->s", W - Ct, Pt, W - Ct), shape=(M, N),
                             mu=MU_TRUE, f_star=0.0, name="torch quadratic")


def test_numpy_quadratic_is_certified_and_gd_pl_holds():
    cert = tl.certify(numpy_quadratic())
    assert cert.status == {"gradient": "ok", "L": "ok", "f_star": "ok", "mu": "ok"}, cert.table()
    assert cert.L_estimate == pytest.approx(L_TRUE, rel=0.02)            # the 2%; Lanczos gives ~1e-10
    rep = tl.check(numpy_quadratic(), tl.Method("bernoulli-lora-gd", p=0.5, rank=2), iters=100, seeds=300,
                   confidence=TRUE_CONFIDENCE)
    assert rep.theorem == "GD-PL" and rep.verdict == "holds", rep.table()


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_torch_quadratic_without_grad_uses_autograd_and_the_estimated_L_loudly():
    pr = torch_quadratic()
    g = pr.bind(tl.get_backend("numpy")).grad(C[None] + 1.0)
    np.testing.assert_allclose(g, grad_np(C[None] + 1.0), rtol=1e-12)     # autograd is the gradient
    cert = tl.certify(pr)
    assert cert.status["gradient"] == "ok" and cert.status["L"] == "estimated"
    assert cert.L_estimate == pytest.approx(L_TRUE, rel=0.02)
    rep = tl.check(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), iters=100, seeds=300,
                   confidence=TRUE_CONFIDENCE)
    assert rep.verdict == "holds" and any("SAMPLED" in n for n in rep.notes), rep.table()
    # same objective, same draws: the numpy and torch objectives give the same trajectories
    a = tl.run(pr, tl.Method("bernoulli-lora-gd", rank=2, stepsize=0.3), iters=20, seeds=4).metric("f_gap")
    b = tl.run(numpy_quadratic(), tl.Method("bernoulli-lora-gd", rank=2, stepsize=0.3), iters=20, seeds=4).metric("f_gap")
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_a_gradient_of_another_objective_is_refuted_and_checks_refuse():
    wrong = numpy_quadratic(grad=lambda W: np.einsum("ik,skj->sij", P, W - 2 * C))    # targets 2C, not C
    cert = tl.certify(wrong)
    assert cert.status["gradient"] == "refuted"
    rep = tl.check(wrong, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), iters=5, seeds=4)
    assert rep.verdict == "not-applicable" and "gradient claim refuted" in rep.reason


def test_half_the_true_L_is_refuted():
    cert = tl.certify(numpy_quadratic(L=L_TRUE / 2))
    assert cert.status["L"] == "refuted" and cert.L_estimate == pytest.approx(L_TRUE, rel=0.02)
    rep = tl.check(numpy_quadratic(L=L_TRUE / 2), tl.Method("bernoulli-lora-gd", rank=2), iters=5, seeds=4)
    assert rep.verdict == "not-applicable" and "L claim refuted" in rep.reason


def test_numpy_without_grad_is_one_clear_error():
    with pytest.raises(tl.InputError, match="grad: a numpy objective needs grad"):
        tl.custom_problem(f_np, shape=(M, N))
    with pytest.raises(tl.InputError, match="must map W"):
        tl.custom_problem(lambda W: W.sum(axis=-1), shape=(M, N), grad=grad_np)


def test_cli_certify_module_function_and_sweep(tmp_path, monkeypatch, capsys):
    (tmp_path / "myprob.py").write_text(
        "import numpy as np, theory_lab as tl\n"
        "def good():\n    return tl.custom_problem(lambda W: 0.5 * (W ** 2).sum(axis=(1, 2)), lambda W: W, shape=(3, 2), "
        "L=1.0, mu=1.0, f_star=0.0, W0=np.ones((3, 2)))\n"
        "def bad():\n    return tl.custom_problem(lambda W: 0.5 * (W ** 2).sum(axis=(1, 2)), lambda W: W, shape=(3, 2), "
        "L=0.5, f_star=0.0, W0=np.ones((3, 2)))\n")
    monkeypatch.chdir(tmp_path)
    assert main(["certify", "myprob:good", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"]["L"] == "ok"
    assert main(["certify", "myprob:bad"]) == 1 and "refuted" in capsys.readouterr().out
    assert main(["check", "--problem", "myprob:good", "--rank", "1", "--iters", "20", "--seeds", "50"]) == 0
    assert main(["certify", "myprob:nope"]) == 2
    table = tl.sweep(tl.problems.resolve_problem("myprob:good"), "bernoulli-lora-gd", {"p": [0.0, 1.0]}, iters=10,
                     seeds=4, progress=False)
    assert set(table.theorem) == {"GD-PL"} and table.config.nunique() == 2


@pytest.mark.parametrize("family", ["least-squares", "quadratic-iso", "kron-quadratic", "linreg-noncvx",
                                    "softmax-regression", "l1-regression", "lora-counterexample"])
def test_every_builtin_family_agrees_with_its_certificate(family):
    """The attached gradient, L, mu and f* of every family pass certification: no claim is refuted, and
    the sampled curvature never exceeds the attached L."""
    pr = tl.make_problem(family, m=5, n=4) if family != "lora-counterexample" else tl.make_problem(family)
    cert = tl.certify(pr)
    assert not cert.refuted, cert.table()
    assert cert.status["gradient"] == "ok"
    if pr.smooth:
        assert cert.L_estimate <= pr.L * (1 + 1e-6)
        if pr.f_star is not None:
            assert cert.status["f_star"] == "ok"


def test_a_too_optimistic_bound_on_a_custom_problem_is_violated():
    """f = 1/2 ||W - C||^2 written by a user (L = mu = 1): GD-PL is exact there (docs/THEORY.md 5.1), so GD-PL with
    its contraction applied twice per step must come out violated, while GD-PL itself is never violated
    (at T = 40 the exact, multiplicative per-seed values are heavy-tailed: inconclusive is allowed)."""
    from helpers import mutate

    pr = tl.custom_problem(lambda W: 0.5 * ((W - C) ** 2).sum(axis=(1, 2)), lambda W: W - C, shape=(M, N), L=1.0,
                           mu=1.0, f_star=0.0, name="iso")
    me = tl.Method("bernoulli-lora-gd", p=0.5, rank=2, stepsize=0.5)
    assert tl.check(pr, me, iters=40, seeds=2000, theorem="GD-PL", seed=3,
                    confidence=TRUE_CONFIDENCE).verdict in ("holds", "tight", "inconclusive")
    assert tl.check(pr, me, iters=40, seeds=2000, theorem=mutate("GD-PL", rate=2.0), seed=3).verdict == "violated"


def test_certify_on_random_quadratics_nobody_picked():
    """Random shapes, spectra and centres (fixed master seed): the true L is always estimated within 2%
    and accepted, half of it always refuted, and a gradient of a shifted objective always refuted."""
    rng = np.random.default_rng(2026)
    for _ in range(8):
        m, n = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        eig = np.exp(rng.uniform(-2, 3, m))
        U, _ = np.linalg.qr(rng.standard_normal((m, m)))
        Pr, Cr = (U * eig) @ U.T, rng.standard_normal((m, n)) * rng.uniform(0.1, 5)

        def f(W, Pr=Pr, Cr=Cr):
            return 0.5 * np.einsum("sij,ik,skj->s", W - Cr, Pr, W - Cr)

        def g(W, Pr=Pr, Cr=Cr):
            return np.einsum("ik,skj->sij", Pr, W - Cr)
        L = float(eig.max())
        ok = tl.certify(tl.custom_problem(f, g, shape=(m, n), L=L, mu=float(eig.min()), f_star=0.0))
        assert not ok.refuted and ok.L_estimate == pytest.approx(L, rel=0.02), ok.table()
        assert tl.certify(tl.custom_problem(f, g, shape=(m, n), L=L / 2)).status["L"] == "refuted"
        shifted = tl.custom_problem(f, lambda W, g=g: g(W - 1.0), shape=(m, n), L=L)
        assert tl.certify(shifted).status["gradient"] == "refuted"


# ------------------------------------------------------------------ finite sums (per-sample f_i)
NS = 40
XS = np.random.default_rng(7).standard_normal((NS, M))
YS = np.random.default_rng(8).standard_normal((NS, N))
SIG = XS.T @ XS / NS
LS_L, LS_MU = float(np.linalg.eigvalsh(SIG)[-1]), float(np.linalg.eigvalsh(SIG)[0])
LS_LMAX = float(np.sum(XS ** 2, axis=1).max())          # L_i = ||x_i||^2 for f_i = 1/2 ||W^T x_i - y_i||^2
LS_FSTAR = None


def ls_f(W):
    return 0.5 * np.mean(np.sum((np.einsum("im,smn->sin", XS, W) - YS) ** 2, axis=-1), axis=-1)


def ls_grad(W):
    return np.einsum("im,sin->smn", XS, np.einsum("im,smn->sin", XS, W) - YS) / NS


def ls_f_i(W, idx, scale=1.0):
    return 0.5 * np.sum((np.einsum("sbm,smn->sbn", XS[idx], W) - scale * YS[idx]) ** 2, axis=-1)


def ls_grad_i(W, idx):
    R = np.einsum("sbm,smn->sbn", XS[idx], W) - YS[idx]
    return XS[idx][..., :, None] * R[..., None, :]


def ls_fstar():
    Ws = np.linalg.solve(SIG, XS.T @ YS / NS)
    return float(ls_f(Ws[None])[0])


def ls_problem(L_max=LS_LMAX, f_i=ls_f_i, **fs):
    return tl.custom_problem(ls_f, ls_grad, shape=(M, N), L=LS_L, mu=LS_MU, f_star=ls_fstar(), W0=np.ones((M, N)),
                             name="least squares as a sum", finite_sum=dict(f_i=f_i, grad_i=ls_grad_i, n=NS,
                                                                            L_max=L_max, f_i_lower=0.0, **fs))


def test_finite_sum_is_certified_and_sgd_pl_holds_with_minibatches():
    """A user's least squares written as a sum of N summands: the mean of the summands is f, the
    per-sample gradients are theirs, the declared L_max = max ||x_i||^2 holds; SGD-PL (minibatch b = 5
    without replacement, delta_inf <= f* - 0 from f_i >= 0) holds at 0.999."""
    pr = ls_problem()
    cert = tl.certify(pr)
    assert {cert.status[k] for k in ("gradient", "L", "mu", "f_star", "finite_sum", "grad_i", "L_max")} == {"ok"}
    assert cert.L_max_estimate <= LS_LMAX * (1 + 1e-6)                 # a lower estimate of max_i L_i
    res = tl.check(pr, tl.Method("bernoulli-lora-sgd", p=0.5, rank=1, batch=5), iters=200, seeds=200,
                   confidence=TRUE_CONFIDENCE)
    assert res.theorem == "SGD-PL" and res.verdict in ("holds", "tight"), res.reason
    # the constants handed to the bound are the declared ones: A = nu L_max, C = 2 nu L_max delta_inf
    # and a bound 20% too optimistic on the same objective and runs must come out violated
    from helpers import mutate
    wrong = tl.check(pr, tl.Method("bernoulli-lora-sgd", p=0.5, rank=1, batch=5), iters=200, seeds=200,
                     theorem=mutate("SGD-PL", scale=0.8), seed=7)
    assert wrong.verdict == "violated", wrong.table()
    from theory_lab.plan import make_plan
    c = make_plan(pr, tl.Method("bernoulli-lora-sgd", p=0.5, rank=1, batch=5), 200, 200).constants
    nu = (NS - 5) / (5 * (NS - 1))
    assert c.A == pytest.approx(nu * LS_LMAX) and c.C == pytest.approx(2 * nu * LS_LMAX * ls_fstar())


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_torch_summands_without_grad_i_match_the_numpy_ones():
    import torch
    Xt, Yt = torch.tensor(XS), torch.tensor(YS)
    pr = tl.custom_problem(lambda W: torch.tensor(ls_f(W.numpy())), shape=(M, N),
                           grad=lambda W: torch.tensor(ls_grad(W.numpy())),
                           finite_sum=dict(n=NS, f_i=lambda W, idx: 0.5 * torch.sum(
                               (torch.einsum("sbm,smn->sbn", Xt[idx], W) - Yt[idx]) ** 2, dim=-1)))
    ref = ls_problem().bind("numpy")
    W = np.random.default_rng(1).standard_normal((3, M, N))
    idx = np.random.default_rng(2).integers(0, NS, size=(3, 2, 5))          # (S, clients, b)
    got = pr.bind("numpy").minibatch_grad(W, idx)
    assert got.shape == (3, 2, M, N)
    np.testing.assert_allclose(got, ref.minibatch_grad(W, idx), rtol=1e-12, atol=1e-14)
    cert = tl.certify(pr)
    assert cert.status["finite_sum"] == "ok" and cert.status["grad_i"] == "ok" and cert.status["L_max"] == "estimated"


def test_summands_of_another_objective_are_refuted_and_checks_refuse():
    """The paper authors' defect in miniature: summands with targets 1.5 y while f uses y."""
    pr = ls_problem(f_i=lambda W, idx: ls_f_i(W, idx, scale=1.5))
    cert = tl.certify(pr)
    assert cert.status["finite_sum"] == "refuted"
    res = tl.check(pr, tl.Method("bernoulli-lora-sgd", p=0.5, rank=1, batch=5), iters=20, seeds=10)
    assert res.verdict == "not-applicable" and "finite_sum" in res.reason


def test_half_the_true_L_max_is_refuted():
    cert = tl.certify(ls_problem(L_max=LS_LMAX / 2))
    assert cert.status["L_max"] == "refuted" and cert.L_max_estimate > LS_LMAX / 2


def test_finite_sum_bad_input_names_the_field():
    with pytest.raises(tl.InputError, match="finite_sum.n"):
        tl.custom_problem(ls_f, ls_grad, shape=(M, N), finite_sum=dict(f_i=ls_f_i))
    with pytest.raises(tl.InputError, match="finite_sum.grad_i"):
        tl.custom_problem(ls_f, ls_grad, shape=(M, N), finite_sum=dict(f_i=ls_f_i, n=NS))
    with pytest.raises(tl.InputError, match="finite_sum.bogus"):
        tl.custom_problem(ls_f, ls_grad, shape=(M, N), finite_sum=dict(f_i=ls_f_i, n=NS, bogus=1))


@pytest.mark.slow
def test_sweep_of_a_users_problem_on_worker_processes():
    """Module-level functions pickle by reference, so the problem travels to worker processes and
    gives the in-process numbers; a lambda-based problem is refused with one line naming workers."""
    pr = numpy_quadratic()
    grid = {"p": [0.2, 0.8]}
    kw = dict(iters=15, seeds=4, progress=False)
    here = tl.sweep(pr, "bernoulli-lora-gd", grid, **kw)
    there = tl.sweep(pr, "bernoulli-lora-gd", grid, workers=2, batch=False, **kw)
    cols = ["config", "seed", "iteration", "f_gap", "grad_sq", "verdict"]
    assert here[cols].equals(there[cols])
    lam = tl.custom_problem(lambda W: 0.5 * (W ** 2).sum(axis=(1, 2)), lambda W: W, shape=(3, 2), L=1.0)
    with pytest.raises(tl.InputError, match="workers"):
        tl.sweep(lam, "bernoulli-lora-gd", grid, workers=2, **kw)


def test_page_on_a_sum_without_l_pm_is_not_applicable_with_a_reason():
    """Found by fuzzing random user finite sums: PAGE's constant V = nu L_pm^2 on a sum that does
    not declare L_pm crashed the plan. It must be not-applicable with a note naming L_pm; declared,
    PAGE-PL holds."""
    pr = ls_problem()
    res = tl.check(pr, tl.Method("bernoulli-lora-page", p=0.5, rank=1, batch=5, stepsize=0.05), iters=40, seeds=20)
    assert res.verdict == "not-applicable" and any("L_pm" in n for n in res.notes), (res.reason, res.notes)
    # L_pm^2 = lambda_max(mean_i ||x_i||^2 x_i x_i^T - Sigma^2) for these summands (docs/THEORY.md 3, as linreg)
    second = (XS * np.sum(XS ** 2, axis=1)[:, None]).T @ XS / NS
    L_pm = float(np.sqrt(max(np.linalg.eigvalsh(second - SIG @ SIG)[-1], 0.0)))
    ok = ls_problem(L_pm=L_pm)
    res = tl.check(ok, tl.Method("bernoulli-lora-page", p=0.5, rank=1, batch=5), iters=150, seeds=200,
                   confidence=TRUE_CONFIDENCE)
    assert res.theorem == "PAGE-PL" and res.verdict in ("holds", "tight"), res.reason


def nan_gradient(W):
    return np.full_like(W, np.nan)


def test_a_nan_gradient_is_refuted_by_name_and_never_judged(capfd):
    """Issue 16, defect 1: a gradient returning NaN was "ok" (NaN skipped inside max) and the check
    VIOLATED. Now certify refutes it naming the NaN, measures nothing else on NaN data (LAPACK then
    prints on stdout), and check says not-applicable; --json stays one JSON object."""
    pr = numpy_quadratic(grad=nan_gradient)
    cert = tl.certify(pr)
    assert cert.status["gradient"] == "refuted" and "NaN" in cert.detail["gradient"]
    assert cert.status["L"] == "uncertain" and "not measured" in cert.detail["L"]
    rep = tl.check(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=1), iters=10, seeds=4)
    assert rep.verdict == "not-applicable" and "NaN" in rep.reason
    capfd.readouterr()
    assert main(["certify", "test_custom:nan_quadratic", "--json"]) == 1
    out = capfd.readouterr().out
    assert json.loads(out)["status"]["gradient"] == "refuted"


def nan_quadratic():
    return numpy_quadratic(grad=nan_gradient)


def test_an_uncertain_claim_is_named_in_the_report():
    """Issue 16, defect 4: a declared f* 0.5 below the true one is only "uncertain" to certify; the
    check that rests on it must say so."""
    pr = tl.custom_problem(f_np, grad_np, shape=(M, N), L=L_TRUE, f_star=-0.5, name="low f*")
    assert tl.certify(pr).status["f_star"] == "uncertain"
    rep = tl.check(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=1), iters=20, seeds=16)
    assert any("f_star claim is UNCERTAIN" in n for n in rep.notes)
    assert "f_star claim is UNCERTAIN" in rep.table()


def test_autograd_objective_evaluates_f_once_per_step():
    """Issue 17: a torch objective without grad gives value and gradient from one forward pass (the
    metric's f(W^t) is autograd's own forward): 20 more steps cost exactly 20 more calls of f, and the
    gradient and gap equal the hand-computed ones."""
    torch = pytest.importorskip("torch")
    calls = [0]

    def f(W):
        calls[0] += 1
        return 0.5 * ((W - 1.0) ** 2).sum(dim=(1, 2))

    pr = tl.custom_problem(f, shape=(3, 4), L=1.0, mu=1.0, f_star=0.0)
    me = tl.Method("bernoulli-lora-gd", rank=2)
    tl.run(pr, me, iters=10, seeds=4)                      # certification and constants: once per problem
    counts = []
    for iters in (10, 30):
        c0 = calls[0]
        tl.run(pr, me, iters=iters, seeds=4)
        counts.append(calls[0] - c0)
    assert counts[1] - counts[0] == 20
    W = np.random.default_rng(0).standard_normal((5, 3, 4))
    G, gap = pr.bind("numpy").grad_and_gap(W)
    np.testing.assert_allclose(G, W - 1.0, rtol=1e-14)
    np.testing.assert_allclose(gap, 0.5 * ((W - 1.0) ** 2).sum(axis=(1, 2)), rtol=1e-14)
    assert isinstance(torch.as_tensor(G), torch.Tensor)
