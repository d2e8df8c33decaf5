"""PAGE and MVR (docs/THEORY.md 4.4, 4.5): estimators that keep G^t across steps."""
from __future__ import annotations

import math

from types import SimpleNamespace

import numpy as np

from ..errors import InputError, check_range
from ..params import Context, Param
from .base import Estimator, evolve, pick, register
from .basic import finite_population_nu, sample_indices


@register
class PAGE(Estimator):
    """G^0 = grad f(W^0); then with probability q (one coin per seed) G^t = grad f(W^t), otherwise
    G^t = G^{t-1} + (1/b) sum_{i in I_t} (grad f_i(W^t) - grad f_i(W^{t-1})), the same minibatch I_t at
    both points. (VR) holds with V = nu L_pm^2. Default q = b/(b + N). Cost: 1 epoch with probability q,
    else 2b/N."""

    name = "page"
    tracks_error = True
    needs_finite_sum = True
    vector_params = {"q": 1}
    PARAMS = (Param("batch", 1, 4, integer=True, valid=(1, 10 ** 7), doc="minibatch size b (<= N without replacement)"),
              Param("replacement", choices=(True, False), fuzz=False, doc="sample with replacement or without"),
              Param("q", 0.05, 1.0, corners=(1.0,), valid=(0.0, 1.0), low_open=True, optional=True,
                    doc="switch probability in (0, 1] (None: b/(b + N)); q = 1 is exact GD, where PAGE's "
                    "bounds are attained"))

    @classmethod
    def fuzz_params(cls, rng, problem, corner=False):
        ctx = Context(problem.m, problem.n, problem.n_samples)
        b, _, q = cls.PARAMS
        out = dict(batch=b.draw(rng, ctx))
        if corner or rng.random() < 0.6:           # else the default q = b/(b + N)
            out["q"] = q.draw(rng, ctx, corner)
        return out

    def __init__(self, batch=1, replacement=False, q=None):
        super().__init__(batch=batch, replacement=replacement, q=q)

    def resolve(self, problem):
        if not problem.is_finite_sum:
            raise InputError("problem", f"PAGE needs a finite sum; {problem.describe()} is not one")
        p = self.params
        if not p["replacement"]:
            check_range("batch", p["batch"], 1, problem.n_samples, integer=True)
        return self._with(q=p["batch"] / (p["batch"] + problem.n_samples) if p["q"] is None else p["q"])

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        xp = streams.backend.xp
        grad = problem.grad(W) if grad is None else grad
        p, N = self._params, problem.n_samples
        if t == 0 or (np.isscalar(p["q"]) and p["q"] >= 1.0):
            return grad, evolve(state, G=grad, epochs=state.epochs + 1.0)
        switch = streams.uniform("switch", t) < p["q"]
        idx = sample_indices(streams, t, N, p["batch"], p["replacement"])
        step = state.G + problem.minibatch_grad(W, idx) - problem.minibatch_grad(W_prev, idx)
        G = xp.where(switch[:, None, None], grad, step)
        return G, evolve(state, G=G, epochs=state.epochs + pick(xp, switch, 1.0, 2.0 * p["batch"] / N))

    def constants(self, problem):
        p = self.params
        nu = finite_population_nu(problem.n_samples, p["batch"], p["replacement"])
        V = None if problem.L_pm is None else nu * problem.L_pm ** 2      # None: a user's sum without L_pm
        return dict(q=p["q"], b=p["batch"], nu=nu, V=V, e0=0.0)


@register
class MVR(Estimator):
    """Momentum variance reduction (STORM): G^t = g_t(W^t) + (1 - a)(G^{t-1} - g_t(W^{t-1})), one
    sample xi_t evaluated at both points; G^0 = grad f(W^0) (so e_0 = 0).

    Oracles: ``noise="additive"``: g = grad f + Z with Z ~ N(0, s^2) shared by the two evaluations
    (sigma2 = s^2 m n, L_pm = 0); ``noise="minibatch"``: b samples with replacement of a finite sum with
    bounded variance (sigma2 = problem sigma2 / b, L_pm^2 / b; softmax regression)."""

    name = "mvr"
    tracks_error = True
    vector_params = {"momentum": 3, "noise_std": 3}
    PARAMS = (Param("momentum", 0.02, 1.0, log=True, corners=(1.0,), valid=(0.0, 1.0), low_open=True,
                    doc="a in (0, 1]; a = 1 is plain SGD"),
              Param("noise", choices=("auto", "additive", "minibatch"), fuzz=False,
                    doc="oracle: additive noise, or minibatches of a finite sum with a variance bound"),
              Param("batch", 1, 4, integer=True, valid=(1, 10 ** 7), fuzz=False, doc="minibatch size b"),
              Param("noise_std", math.exp(-3), math.exp(-0.5), log=True, corners=(1e-3,), valid=(0.0, 1e100),
                    doc="additive noise shared by both evaluations; tiny noise with a = 1 is GD"))

    @classmethod
    def fuzz_params(cls, rng, problem, corner=False):
        """MVR's own "auto" rule: additive noise unless the problem is a finite sum with a variance
        bound (the corner: momentum 1 with tiny additive noise, where MVR is GD)."""
        ctx = Context(problem.m, problem.n, problem.n_samples)
        a, _, _, s = cls.PARAMS
        out = dict(momentum=a.draw(rng, ctx, corner))
        if corner or not (problem.is_finite_sum and getattr(problem, "sigma2", None)):
            out.update(noise="additive", noise_std=s.draw(rng, ctx, corner))
        return out

    def capabilities(self):
        return frozenset({"additive-noise"} if self._params["noise"] == "additive" else {"minibatch"})

    def __init__(self, momentum=0.1, noise="auto", batch=1, noise_std=0.1):
        super().__init__(momentum=momentum, noise=noise, batch=batch, noise_std=noise_std)

    def resolve(self, problem):
        noise = self._params["noise"]
        if noise == "auto":
            noise = "minibatch" if problem.is_finite_sum and getattr(problem, "sigma2", None) else "additive"
        if noise == "minibatch" and not problem.is_finite_sum:
            raise InputError("noise", f"minibatch sampling needs a finite sum; {problem.describe()} is not one")
        return self._with(noise=noise)

    def init(self, problem, W, streams):
        return SimpleNamespace(G=None, prev_grad=None, epochs=0.0, bits=0.0)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        p = self._params
        a = p["momentum"]
        grad = problem.grad(W) if grad is None else grad
        if t == 0:
            return grad, evolve(state, G=grad, prev_grad=grad, epochs=state.epochs + 1.0)
        if p["noise"] == "additive":
            Z = p["noise_std"] * streams.normal("noise", t, W.shape[1:])
            g_now, g_prev = grad + Z, state.prev_grad + Z
            cost = 1.0
        else:
            idx = sample_indices(streams, t, problem.n_samples, p["batch"], True)
            g_now, g_prev = problem.minibatch_grad(W, idx), problem.minibatch_grad(W_prev, idx)
            cost = 2.0 * p["batch"] / problem.n_samples
        G = g_now + (1.0 - a) * (state.G - g_prev)
        return G, evolve(state, G=G, prev_grad=grad, epochs=state.epochs + cost)

    def constants(self, problem):
        p = self.params
        if p["noise"] == "additive":
            s2 = p["noise_std"] ** 2 * problem.m * problem.n
            return dict(a=p["momentum"], sigma2=s2, L_pm_mvr=0.0, e0=0.0)
        s2 = getattr(problem, "sigma2", None)
        return dict(a=p["momentum"], sigma2=None if s2 is None else s2 / p["batch"],
                    L_pm_mvr=None if problem.L_pm is None else problem.L_pm / p["batch"] ** 0.5, e0=0.0)
