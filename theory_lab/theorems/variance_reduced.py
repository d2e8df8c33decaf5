"""PAGE, MARINA, MVR and EF21 theorems (docs/THEORY.md 4.4-4.6).

NC results bound Q_T (avg_grad_sq); PL results bound E Phi_T, Phi_t = f(W^t) - f* + c e_t (EF21:
c times the client-averaged error), measured per seed from the run's f_gap and est_error.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Theorem, register


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
        doc=f"Q_T <= 2 (delta0 + gamma Lam e0/(2q))/(gamma lam T); {doc_v}.",
        section="4.4", stepsize_text="gamma <= 1/(L + sqrt(Lam (1 - q) V/q))",
        stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/(2q)) e_t: the coefficient of E||W^{t+1} - W^t||^2 is "
        "<= 0 iff 1 - L gamma - gamma^2 Lam (1 - q) V/q >= 0",
        symbols=dict(q="the switch probability (a full gradient with probability q)",
                     V=f"the (VR) constant: {doc_v}", e0="E||G^0 - grad f(W^0)||^2 (0: G^0 = grad f(W^0))"),
        attained="q = 1 (every step a full gradient, the estimator is exact GD): the GD-NC bound for gamma <= 1/L"))
    register(Theorem(
        id=f"{name}-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, (VR)",
        estimator=est, needs_pl=True, max_stepsize=pl_step, condition=_max_step_cond(f"{name}-PL", pl_step),
        measure=_lyapunov(lambda c: c.gamma * c.lam_max / switch(c)),
        bound=lambda t, c: (1 - _pl_rho(c, switch(c))) ** t * (c.delta0 + c.gamma * c.lam_max * c.e0 / switch(c)),
        rate=lambda c: 1 - _pl_rho(c, switch(c)), one_step=True,
        doc=f"E Phi_T <= (1 - min(gamma mu lam, q/2))^T Phi_0, Phi = f - f* + (gamma Lam/q) e; {doc_v}.",
        section="4.4", stepsize_text="gamma <= 1/(L + sqrt(2 Lam (1 - q) V/q))",
        stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/q) e_t: the R_t coefficient is <= 0 under this stepsize, "
        "and E Phi_{t+1} <= (1 - rho) E Phi_t with rho = min(gamma mu lam, q/2)",
        symbols=dict(q="the switch probability", V=f"the (VR) constant: {doc_v}",
                     e0="E||G^0 - grad f(W^0)||^2 (0: G^0 = grad f(W^0))",
                     rho="min(gamma mu lam, q/2)", Phi="f(W^t) - f* + (gamma Lam/q) ||G^t - grad f(W^t)||^2"),
        attained="q = 1 with gamma = 1/L on the isotropic quadratic and isotropic sketches: e_t = 0 and the rate "
        "1 - gamma mu lam is GD's at gamma = 1/L"))


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
    doc="Q_T <= 2 Phi_0/(gamma lam T) + 2 a sigma2 Lam/lam.",
    section="4.5", stepsize_text="gamma <= 1/(L + (1 - a) L_pm sqrt(2 Lam/a))",
    stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/(2a)) e_t with the MVR lemma E e_{t+1} <= (1-a)^2 E e_t + "
    "2 (1-a)^2 L_pm^2 E R_t + 2 a^2 sigma2: the R_t coefficient is <= 0 under this stepsize",
    symbols=dict(a="the momentum in (0, 1] (a = 1: plain SGD)", L_pm_mvr="L_pm of the two-point oracle "
                 "(0 for additive noise shared by both evaluations)",
                 e0="E||G^0 - grad f(W^0)||^2 (0 here: G^0 = grad f(W^0))"),
    attained="momentum a = 1 with tiny noise: the estimator is GD and the bound is GD-NC's for gamma <= 1/L"))

register(Theorem(
    id="MVR-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, A6m",
    estimator="mvr", needs_pl=True, applies=_mvr_applies, max_stepsize=_mvr_pl_step,
    condition=_max_step_cond("MVR-PL", _mvr_pl_step), measure=_lyapunov(lambda c: c.gamma * c.lam_max / c.a),
    bound=lambda t, c: (1 - _mvr_rho(c)) ** t * (c.delta0 + c.gamma * c.lam_max * c.e0 / c.a)
    + 2 * c.gamma * c.lam_max * c.a * c.sigma2 / _mvr_rho(c),
    rate=lambda c: 1 - _mvr_rho(c), floor=lambda c: 2 * c.gamma * c.lam_max * c.a * c.sigma2 / _mvr_rho(c),
    doc="E Phi_T <= (1 - rho)^T Phi_0 + 2 gamma Lam a sigma2/rho, rho = min(gamma mu lam, a/2).",
    section="4.5", stepsize_text="gamma <= 1/(L + 2 (1 - a) L_pm sqrt(Lam/a))",
    stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/a) e_t with the MVR lemma: the R_t coefficient is <= 0 "
    "under this stepsize, giving E Phi_{t+1} <= (1 - rho) E Phi_t + 2 gamma Lam a^2 sigma2/a",
    symbols=dict(a="the momentum in (0, 1]", L_pm_mvr="L_pm of the two-point oracle",
                 e0="E||G^0 - grad f(W^0)||^2 (0 here)", rho="min(gamma mu lam, a/2)",
                 Phi="f(W^t) - f* + (gamma Lam/a) ||G^t - grad f(W^t)||^2"),
    attained="momentum a = 1 with noise -> 0 and gamma = 1/L on the isotropic quadratic: GD's rate"))


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
    doc="Q_T <= 2 (delta0 + gamma Lam G0/(2 theta))/(gamma lam T).",
    section="4.6", stepsize_text="gamma <= 1/(L + L_tilde sqrt(Lam beta/theta))",
    stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/(2 theta)) G_t with the EF21 lemma E G_{t+1} <= (1 - theta) "
    "E G_t + beta L_tilde^2 E R_t: the R_t coefficient is <= 0 under this stepsize",
    symbols=dict(theta="1 - sqrt(1 - alpha) (alpha = k/d for TopK)", beta="(1 - alpha)/(1 - sqrt(1 - alpha))",
                 cL_tilde="L_tilde, the clients' mean-square smoothness constant (docs/THEORY.md 3(h))",
                 G0="(1/M) sum_i ||g_i^0 - grad f_i(W^0)||^2, the clients' initial error"),
    attained="k = d (alpha = 1, theta = 1, beta = 0): no compression, stepsize 1/L, the GD-NC bound"))

register(Theorem(
    id="EF21-PL", metric="lyapunov", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, A7c",
    estimator="ef21", needs_pl=True, max_stepsize=_ef21_pl_step, condition=_max_step_cond("EF21-PL", _ef21_pl_step),
    measure=_lyapunov(lambda c: c.gamma * c.lam_max / c.theta),
    bound=lambda t, c: (1 - _ef21_rho(c)) ** t * (c.delta0 + c.gamma * c.lam_max * c.G0 / c.theta),
    rate=lambda c: 1 - _ef21_rho(c), one_step=True,
    doc="E Phi_T <= (1 - min(gamma mu lam, theta/2))^T Phi_0, Phi = f - f* + (gamma Lam/theta) G.",
    section="4.6", stepsize_text="gamma <= 1/(L + L_tilde sqrt(2 Lam beta/theta))",
    stepsize_from="Lyapunov Phi_t = delta_t + (gamma Lam/theta) G_t with the EF21 lemma: the R_t coefficient is <= 0 "
    "under this stepsize and E Phi_{t+1} <= (1 - rho) E Phi_t",
    symbols=dict(theta="1 - sqrt(1 - alpha)", beta="(1 - alpha)/(1 - sqrt(1 - alpha))",
                 cL_tilde="L_tilde, the clients' mean-square smoothness constant", rho="min(gamma mu lam, theta/2)",
                 G0="(1/M) sum_i ||g_i^0 - grad f_i(W^0)||^2",
                 Phi="f(W^t) - f* + (gamma Lam/theta) (1/M) sum_i ||g_i^t - grad f_i(W^t)||^2"),
    attained="k = d (no compression) with gamma = 1/L on the isotropic quadratic: GD's rate, G_t = 0"))
