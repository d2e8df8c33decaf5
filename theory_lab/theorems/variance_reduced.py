"""PAGE, MARINA, MVR and EF21 theorems (THEORY.md 4.4-4.6).

NC results bound Q_T (avg_grad_sq); PL results bound E Phi_T, Phi_t = f(W^t) - f* + c e_t (EF21:
c times the client-averaged error), measured per seed from the run's f_gap and est_error.
"""
from __future__ import annotations

import math

import numpy as np

from . import Theorem, register


def _sqrt(x):
    return math.sqrt(max(x, 0.0))


def _max_step_cond(name, fn):
    def cond(c):
        g = fn(c)
        if not (0 < c.gamma <= g * (1 + 1e-12)):
            return f"stepsize: gamma = {c.gamma:.6g} is outside {name}'s condition 0 < gamma <= {g:.6g}"
        return None
    return cond


def _lyapunov(coeff):
    return lambda M, c: M["f_gap"] + coeff(c) * M["est_error"]


def _pl_rho(c, switch):
    return min(c.gamma * c.mu * c.lam_min, switch / 2)


# ------------------------------------------------------------------ PAGE and MARINA (4.4)
def _vr_pair(est: str, name: str, switch, V, doc_v: str):
    nc_step = lambda c: 1.0 / (c.L + _sqrt(c.lam_max * (1 - switch(c)) * V(c) / switch(c)))  # noqa: E731
    pl_step = lambda c: 1.0 / (c.L + _sqrt(2 * c.lam_max * (1 - switch(c)) * V(c) / switch(c)))  # noqa: E731
    register(Theorem(
        id=f"{name}-NC", metric="avg_grad_sq", kind="UPPER", provenance="DERIVED", assumptions="A0-A3, (VR)",
        estimator=est, max_stepsize=nc_step, condition=_max_step_cond(f"{name}-NC", nc_step),
        bound=lambda t, c: 2 * (c.delta0 + c.gamma * c.lam_max * c.e0 / (2 * switch(c)))
        / (c.gamma * c.lam_min * np.maximum(t, 1)),
        doc=f"Q_T <= 2 (delta0 + gamma Lam e0/(2q))/(gamma lam T); {doc_v}."))
    register(Theorem(
        id=f"{name}-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, (VR)",
        estimator=est, needs_pl=True, max_stepsize=pl_step, condition=_max_step_cond(f"{name}-PL", pl_step),
        measure=_lyapunov(lambda c: c.gamma * c.lam_max / switch(c)),
        bound=lambda t, c: (1 - _pl_rho(c, switch(c))) ** t * (c.delta0 + c.gamma * c.lam_max * c.e0 / switch(c)),
        rate=lambda c: 1 - _pl_rho(c, switch(c)), one_step=True,
        doc=f"E Phi_T <= (1 - min(gamma mu lam, q/2))^T Phi_0, Phi = f - f* + (gamma Lam/q) e; {doc_v}."))


_vr_pair("page", "PAGE", lambda c: c.q, lambda c: c.V, "V = nu L_pm^2")
_vr_pair("marina", "MARINA", lambda c: c.q, lambda c: c.V, "V = omega L_tilde^2 / M")


# ------------------------------------------------------------------ MVR (4.5)
def _mvr_applies(problem, method):
    if method.estimator.constants(problem).get("sigma2") is None:
        return (f"MVR needs a uniform variance bound sigma2 (A6m); {problem.describe()} minibatches have none "
                "(use noise='additive' or softmax-regression)")
    return None


def _mvr_nc_step(c):
    return 1.0 / (c.L + (1 - c.a) * c.L_pm_mvr * _sqrt(2 * c.lam_max / c.a))


def _mvr_pl_step(c):
    return 1.0 / (c.L + 2 * (1 - c.a) * c.L_pm_mvr * _sqrt(c.lam_max / c.a))


def _mvr_rho(c):
    return min(c.gamma * c.mu * c.lam_min, c.a / 2)


register(Theorem(
    id="MVR-NC", metric="avg_grad_sq", kind="UPPER", provenance="DERIVED", assumptions="A0-A3, A6m",
    estimator="mvr", applies=_mvr_applies, max_stepsize=_mvr_nc_step,
    condition=_max_step_cond("MVR-NC", _mvr_nc_step),
    bound=lambda t, c: 2 * (c.delta0 + c.gamma * c.lam_max * c.e0 / (2 * c.a)) / (c.gamma * c.lam_min * np.maximum(t, 1))
    + 2 * c.a * c.sigma2 * c.lam_max / c.lam_min,
    doc="Q_T <= 2 Phi_0/(gamma lam T) + 2 a sigma2 Lam/lam."))

register(Theorem(
    id="MVR-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, A6m",
    estimator="mvr", needs_pl=True, applies=_mvr_applies, max_stepsize=_mvr_pl_step,
    condition=_max_step_cond("MVR-PL", _mvr_pl_step), measure=_lyapunov(lambda c: c.gamma * c.lam_max / c.a),
    bound=lambda t, c: (1 - _mvr_rho(c)) ** t * (c.delta0 + c.gamma * c.lam_max * c.e0 / c.a)
    + 2 * c.gamma * c.lam_max * c.a * c.sigma2 / _mvr_rho(c),
    rate=lambda c: 1 - _mvr_rho(c), floor=lambda c: 2 * c.gamma * c.lam_max * c.a * c.sigma2 / _mvr_rho(c),
    doc="E Phi_T <= (1 - rho)^T Phi_0 + 2 gamma Lam a sigma2/rho, rho = min(gamma mu lam, a/2)."))


# ------------------------------------------------------------------ EF21 (4.6)
def _ef21_nc_step(c):
    return 1.0 / (c.L + c.cL_tilde * _sqrt(c.lam_max * c.beta / c.theta))


def _ef21_pl_step(c):
    return 1.0 / (c.L + c.cL_tilde * _sqrt(2 * c.lam_max * c.beta / c.theta))


def _ef21_rho(c):
    return min(c.gamma * c.mu * c.lam_min, c.theta / 2)


register(Theorem(
    id="EF21-NC", metric="avg_grad_sq", kind="UPPER", provenance="DERIVED", assumptions="A0-A3, A7c",
    estimator="ef21", max_stepsize=_ef21_nc_step, condition=_max_step_cond("EF21-NC", _ef21_nc_step),
    bound=lambda t, c: 2 * (c.delta0 + c.gamma * c.lam_max * c.G0 / (2 * c.theta)) / (c.gamma * c.lam_min * np.maximum(t, 1)),
    doc="Q_T <= 2 (delta0 + gamma Lam G0/(2 theta))/(gamma lam T)."))

register(Theorem(
    id="EF21-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, A7c",
    estimator="ef21", needs_pl=True, max_stepsize=_ef21_pl_step, condition=_max_step_cond("EF21-PL", _ef21_pl_step),
    measure=_lyapunov(lambda c: c.gamma * c.lam_max / c.theta),
    bound=lambda t, c: (1 - _ef21_rho(c)) ** t * (c.delta0 + c.gamma * c.lam_max * c.G0 / c.theta),
    rate=lambda c: 1 - _ef21_rho(c), one_step=True,
    doc="E Phi_T <= (1 - min(gamma mu lam, theta/2))^T Phi_0, Phi = f - f* + (gamma Lam/theta) G."))
