"""PAGE and MVR (THEORY.md 4.4, 4.5): estimators that keep G^t across steps."""
from __future__ import annotations

from types import SimpleNamespace

from ..errors import InputError, check_range
from . import Estimator, pick, register
from .basic import finite_population_nu, sample_indices


@register
class PAGE(Estimator):
    """G^0 = grad f(W^0); then with probability q (one coin per seed) G^t = grad f(W^t), otherwise
    G^t = G^{t-1} + (1/b) sum_{i in I_t} (grad f_i(W^t) - grad f_i(W^{t-1})), the same minibatch I_t at
    both points. (VR) holds with V = nu L_pm^2. Default q = b/(b + N). Cost: 1 epoch with probability q,
    else 2b/N."""

    name = "page"
    tracks_error = True

    def __init__(self, batch=1, replacement=False, q=None):
        super().__init__(batch=batch, replacement=bool(replacement), q=q)

    def validate(self, problem):
        if not problem.is_finite_sum:
            raise InputError("problem", f"PAGE needs a finite sum; {problem.family} is not one")
        p = self.params
        p["batch"] = check_range("batch", p["batch"], 1, problem.n_samples if not p["replacement"] else 10 ** 7,
                                 integer=True)
        if p["q"] is None:
            p["q"] = p["batch"] / (p["batch"] + problem.n_samples)
        p["q"] = check_range("q", p["q"], 0.0, 1.0, low_open=True)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        xp = streams.backend.xp
        grad = problem.grad(W) if grad is None else grad
        p, N = self.params, problem.n_samples
        if t == 0 or p["q"] >= 1.0:
            state.G, state.epochs = grad, state.epochs + 1.0
            return grad, state
        switch = streams.uniform("switch", t) < p["q"]
        idx = sample_indices(streams, t, N, p["batch"], p["replacement"])
        step = state.G + problem.minibatch_grad(W, idx) - problem.minibatch_grad(W_prev, idx)
        state.G = xp.where(switch[:, None, None], grad, step)
        state.epochs = state.epochs + pick(xp, switch, 1.0, 2.0 * p["batch"] / N)
        return state.G, state

    def constants(self, problem):
        p = self.params
        nu = finite_population_nu(problem.n_samples, p["batch"], p["replacement"])
        return dict(q=p["q"], b=p["batch"], nu=nu, V=nu * problem.L_pm ** 2, e0=0.0)


@register
class MVR(Estimator):
    """Momentum variance reduction (STORM): G^t = g_t(W^t) + (1 - a)(G^{t-1} - g_t(W^{t-1})), one
    sample xi_t evaluated at both points; G^0 = grad f(W^0) (so e_0 = 0).

    Oracles: ``noise="additive"``: g = grad f + Z with Z ~ N(0, s^2) shared by the two evaluations
    (sigma2 = s^2 m n, L_pm = 0); ``noise="minibatch"``: b samples with replacement of a finite sum with
    bounded variance (sigma2 = problem sigma2 / b, L_pm^2 / b; softmax regression)."""

    name = "mvr"
    tracks_error = True

    def __init__(self, momentum=0.1, noise="auto", batch=1, noise_std=0.1):
        super().__init__(momentum=momentum, noise=noise, batch=batch, noise_std=noise_std)

    def validate(self, problem):
        p = self.params
        p["momentum"] = check_range("momentum", p["momentum"], 0.0, 1.0, low_open=True)
        if p["noise"] == "auto":
            p["noise"] = "minibatch" if problem.is_finite_sum and getattr(problem, "sigma2", None) else "additive"
        if p["noise"] not in ("additive", "minibatch"):
            raise InputError("noise", f"got {p['noise']!r}; accepted: auto, additive, minibatch")
        if p["noise"] == "minibatch":
            if not problem.is_finite_sum:
                raise InputError("noise", f"minibatch sampling needs a finite sum; {problem.family} is not one")
            p["batch"] = check_range("batch", p["batch"], 1, 10 ** 7, integer=True)
        else:
            p["noise_std"] = check_range("noise_std", p["noise_std"], 0.0, None)

    def init(self, problem, W, streams):
        return SimpleNamespace(G=None, prev_grad=None, epochs=0.0, bits=0.0)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        a, p = self.params["momentum"], self.params
        grad = problem.grad(W) if grad is None else grad
        if t == 0:
            state.G, state.prev_grad, state.epochs = grad, grad, state.epochs + 1.0
            return grad, state
        if p["noise"] == "additive":
            Z = p["noise_std"] * streams.normal("noise", t, W.shape[1:])
            g_now, g_prev = grad + Z, state.prev_grad + Z
            state.epochs = state.epochs + 1.0
        else:
            idx = sample_indices(streams, t, problem.n_samples, p["batch"], True)
            g_now, g_prev = problem.minibatch_grad(W, idx), problem.minibatch_grad(W_prev, idx)
            state.epochs = state.epochs + 2.0 * p["batch"] / problem.n_samples
        state.G = g_now + (1.0 - a) * (state.G - g_prev)
        state.prev_grad = grad
        return state.G, state

    def constants(self, problem):
        p = self.params
        if p["noise"] == "additive":
            s2 = p["noise_std"] ** 2 * problem.m * problem.n
            return dict(a=p["momentum"], sigma2=s2, L_pm_mvr=0.0, e0=0.0)
        s2 = getattr(problem, "sigma2", None)
        return dict(a=p["momentum"], sigma2=None if s2 is None else s2 / p["batch"],
                    L_pm_mvr=problem.L_pm / p["batch"] ** 0.5, e0=0.0)
