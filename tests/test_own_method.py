"""Issue 18: a researcher's own method, checked, swept and fuzzed like a built-in one.

The example of README "Your own method" (examples/own_method.py): an importance-sampled sketch with
a declared parameter whose corner (skew = 0, uniform coordinates) is where its theorem is attained.
The theorem holds on random configurations; a 10%-optimistic copy is found violated by the fuzz
engine (persisting at 4x the seeds and confidence 0.9999). A user estimator registered with
``tl.register_estimator`` and ``tl.register_method`` runs, and its declared parameters are drawn.
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import theory_lab as tl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from own_method import THEOREM, Importance  # noqa: E402


def test_the_sketch_is_the_declared_law():
    """E[H] = diag(pi): the Monte Carlo mean of 20,000 left masks matches pi to 5 standard errors;
    lambda_min^p = p min(pi_B) + (1 - p) min(pi_A) in the plan's constants."""
    pr = tl.make_problem("quadratic-iso", m=5, n=4)
    me = tl.Method("bernoulli-lora-gd", p=0.3, rank=1, sketch="importance", skew=1.0)
    from theory_lab.backend import get_backend
    from theory_lab.backend.random import Streams

    bk = get_backend("numpy")
    masks = me.sketch_left.sample(Streams(bk, 3, np.arange(20_000)), 0, 5, 1)
    pi = Importance(skew=1.0).probs(5)
    se = np.sqrt(pi * (1 - pi) / 20_000)
    assert np.all(np.abs(masks.mean(axis=0) - pi) < 5 * se)
    plan = tl.plan.make_plan(pr, me, 10, 2, 0, theorem=THEOREM, min_seeds=2)
    assert plan.reason is None
    lam = 0.3 * pi.min() + 0.7 * Importance(skew=1.0).probs(4).min()
    assert plan.constants.lam_min == pytest.approx(lam, rel=1e-12)
    with pytest.raises(tl.InputError, match="rank"):
        tl.plan.make_plan(pr, tl.Method("bernoulli-lora-gd", rank=2, sketch="importance"), 10, 2, 0, theorem=THEOREM)
    with pytest.raises(tl.InputError, match="skew"):
        tl.Method("bernoulli-lora-gd", rank=1, sketch="importance", skew=-1.0)
    with pytest.raises(tl.InputError, match="skew"):
        tl.Method("bernoulli-lora-gd", rank=1, sketch="gaussian", skew=0.5)      # another law's parameter


def test_own_method_checks_sweeps_and_fuzzes():
    pr = tl.make_problem("least-squares", m=6, n=5, n_samples=30)
    rep = tl.check(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=1, sketch="importance", skew=0.7), iters=150,
                   seeds=256, theorem=THEOREM, confidence=0.999)
    assert rep.verdict == "holds"
    t = tl.sweep(pr, "bernoulli-lora-gd", {"skew": [0.0, 1.0]}, iters=40, seeds=16, progress=False,
                 method_params=dict(rank=1, sketch="importance"))
    s = t.summary()
    assert list(s["skew"]) == [0.0, 1.0] and s.slack_lam.iloc[0] == pytest.approx(1.0)    # uniform: isotropic
    assert s.slack_lam.iloc[1] > 1                                  # skewed: lam_bar > lam_min
    table = tl.fuzz([THEOREM], budget=120, seed=3, configs=12, search_steps=2)   # count-bound: not speed-bound
    assert len(table) >= 12 and not table.persisting.any()
    assert set(table.params.map(lambda p: eval(p.replace("true", "True").replace("false", "False"))["sketch"])) \
        <= {"importance", "importance/importance"}


def test_a_ten_percent_optimistic_user_bound_is_found_violated():
    """The engine reaches the corner (skew = 0 on the isotropic quadratic, stepsize at the condition's
    edge) where the user's bound is attained, so the bound x 0.9 (t > 0) is violated and persists."""
    b = THEOREM.bound
    wrong = dataclasses.replace(THEOREM, id="IMPORTANCE-PL-x0.9",
                                bound=lambda t, c: np.where(np.asarray(t) > 0, 0.9, 1.0) * b(t, c))
    table = tl.fuzz([wrong], budget=120, seed=0, configs=8, search_steps=0)
    hit = table[table.persisting & (table.verdict == "violated")]
    assert len(hit) >= 1, table[["verdict", "recheck", "python"]]
    code = hit.iloc[0].python.replace("theorem='IMPORTANCE-PL-x0.9'", "theorem=wrong")
    rep = eval(code, {"tl": tl, "wrong": wrong})                                  # the reproducer reproduces
    assert rep.verdict == "violated"


class NoisyGD(tl.Estimator):
    """A user estimator: the gradient plus Gaussian noise of declared scale (SGD's N1 model)."""

    name = "noisy-gd"
    # one declaration: accepted range [0, 1e6] (checked by tl.Estimator.__init__), fuzz range and corner
    PARAMS = (tl.Param("scale", 0.01, 1.0, log=True, corners=(1e-4,), valid=(0.0, 1e6)),)
    CAPABILITIES = frozenset({"additive-noise"})

    def __init__(self, scale=0.1):
        super().__init__(scale=scale)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        g = problem.grad(W) if grad is None else grad
        return g + self._params["scale"] * streams.normal("noise", t, W.shape[1:]), tl.evolve(state, epochs=state.epochs + 1)

    def constants(self, problem):
        s2 = self._params["scale"] ** 2 * problem.m * problem.n
        return dict(A=0.0, B=1.0, C=s2)


def test_a_user_estimator_registers_runs_and_is_drawn():
    tl.register_estimator(NoisyGD)
    tl.register_method("bernoulli-lora-noisy", "noisy-gd", summary="user: GD plus noise")
    th = dataclasses.replace(tl.get_theorem("SGD-PL"), id="NOISY-PL", estimator="noisy-gd")
    pr = tl.make_problem("least-squares", m=6, n=5, n_samples=30)
    me = tl.Method("bernoulli-lora-noisy", rank=2, scale=0.05)
    assert "additive-noise" in me.capabilities
    rep = tl.check(pr, me, iters=100, seeds=128, theorem=th, confidence=0.999)
    assert rep.verdict in ("holds", "tight") and rep.constants["C"]["value"] == pytest.approx(0.05 ** 2 * 30)
    from theory_lab.fuzz import draw

    rng = np.random.default_rng(0)
    draws = [draw(th, rng, seed=k) for k in range(12)]
    assert all(d is not None and d.method == "bernoulli-lora-noisy" for d in draws)
    assert any(d.params["scale"] == 1e-4 for d in draws)                          # the declared corner
    with pytest.raises(tl.InputError, match="estimator"):
        tl.register_estimator(object)
