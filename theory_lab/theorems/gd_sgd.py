"""GD, SGD and QGD theorems (docs/THEORY.md 4.1-4.3)."""
from __future__ import annotations

import numpy as np

from .base import Theorem, register


def _lt_2_over_L(id_):
    def cond(c):
        if not (0 < c.gamma < 2 / c.L):
            return f"stepsize: gamma = {c.gamma:.6g} is outside {id_}'s condition 0 < gamma < 2/L = {2 / c.L:.6g}"
        return None
    return cond



# ------------------------------------------------------------------------ GD (docs/THEORY.md 4.1)
register(Theorem(
    id="GD-NC", metric="avg_grad_sq", kind="UPPER", provenance="RAC (gamma <= 1/L); DERIVED (gamma < 2/L)",
    assumptions="A0-A3", estimator="gd",
    bound=lambda t, c: c.delta0 / (c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min * np.maximum(t, 1)),
    max_stepsize=lambda c: 2 / c.L, recommended_stepsize=lambda c: 1 / c.L,
    condition=_lt_2_over_L("GD-NC"),
    doc="Q_T = (1/T) sum_{t<T} E||grad f(W^t)||^2 <= delta0 / (gamma (1 - L gamma/2) lam_min T).",
    section="4.1", stepsize_text="0 < gamma < 2/L (recommended 1/L, where the bound reads 2 delta0/(gamma lam T))",
    stepsize_from="the descent lemma with idempotent sketches: E[delta_{t+1} | F_t] <= delta_t - gamma (1 - L gamma/2) "
    "<grad f, M_p grad f>, a decrease only while 1 - L gamma/2 > 0",
    attained="as T -> infinity on the isotropic quadratic with isotropic sketches (ratio 1 - q^T, "
    "q = 1 - (2 gamma - gamma^2) lam)"))

register(Theorem(
    id="GD-PL", metric="f_gap", kind="UPPER", provenance="RAC (gamma <= 1/L); DERIVED (gamma < 2/L)",
    assumptions="A0-A4", estimator="gd", needs_pl=True,
    bound=lambda t, c: (1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min) ** t * c.delta0,
    max_stepsize=lambda c: 2 / c.L, recommended_stepsize=lambda c: 1 / c.L,
    condition=_lt_2_over_L("GD-PL"),
    rate=lambda c: 1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min, one_step=True,
    doc="E[f(W^T) - f*] <= (1 - 2 mu gamma (1 - L gamma/2) lam_min)^T (f(W0) - f*).",
    section="4.1", stepsize_text="0 < gamma < 2/L (recommended 1/L: rate 1 - mu lam/L)",
    stepsize_from="the descent lemma (as GD-NC) combined with PL, ||grad f||^2 >= 2 mu delta_t: a contraction "
    "factor below 1 needs 1 - L gamma/2 > 0",
    attained="exactly (EXACT-ISO) on the isotropic quadratic f = 1/2 ||W - W*||^2 (L = mu = 1) with isotropic "
    "sketches, at every gamma in (0, 2)"))


# ------------------------------------------------------------------------ SGD (docs/THEORY.md 4.2)
def sgd_u(c):
    return c.L * c.gamma ** 2 * c.lam_max * c.A


def sgd_c_gamma(c):
    return c.gamma * c.lam_min * (1 - c.L * c.gamma / 2) - (c.L * c.gamma ** 2 / 2) * c.lam_max * (c.B - 1)


def sgd_psi(c):
    return (c.L * c.gamma ** 2 / 2) * c.lam_max * c.C


def sgd_rho(c):
    return 2 * c.mu * sgd_c_gamma(c) - sgd_u(c)


def _sgd_nc_cond(c):
    if not (0 < c.gamma < 2 / c.L):
        return f"stepsize: gamma = {c.gamma:.6g} is outside SGD-NC's condition 0 < gamma < 2/L = {2 / c.L:.6g}"
    if sgd_c_gamma(c) <= 0:
        return f"stepsize: gamma = {c.gamma:.6g} gives c_gamma <= 0 (SGD-NC needs c_gamma > 0)"
    return None


def _sgd_pl_cond(c):
    reason = _sgd_nc_cond(c)
    if reason:
        return reason.replace("SGD-NC", "SGD-PL")
    rho = sgd_rho(c)
    if not (0 < rho <= 1):
        return f"stepsize: gamma = {c.gamma:.6g} gives rho = {rho:.4g}; SGD-PL needs rho in (0, 1]"
    return None


def _sgd_nc_step(c):
    return c.lam_min / (c.L * (c.lam_min + c.lam_max * max(c.B - 1, 0.0)))


def _sgd_pl_step(c):
    g = _sgd_nc_step(c)
    if c.A > 0:
        g = min(g, c.mu * c.lam_min / (2 * c.L * c.A * c.lam_max))
    return g


def _sgd_nc_bound(t, c):
    u, cg, psi = sgd_u(c), sgd_c_gamma(c), sgd_psi(c)
    T = np.maximum(t, 1)
    W_T = T if u == 0 else -np.expm1(-T * np.log1p(u)) / u
    return c.delta0 / (cg * W_T) + psi / cg


def _sgd_pl_bound(t, c):
    rho, psi = sgd_rho(c), sgd_psi(c)
    q = (1 - rho) ** t
    return q * c.delta0 + psi * (1 - q) / rho


register(Theorem(
    id="SGD-NC", metric="wavg_grad_sq", kind="UPPER", provenance="DERIVED", assumptions="A0-A3, A5",
    estimator="sgd", bound=_sgd_nc_bound, max_stepsize=lambda c: 2 / c.L,
    recommended_stepsize=_sgd_nc_step, condition=_sgd_nc_cond, weight_u=sgd_u,
    doc="Q_T^w <= delta0/(c_gamma W_T) + psi/c_gamma, w_t = (1+u)^-(t+1).",
    section="4.2", stepsize_text="0 < gamma < 2/L and c_gamma > 0; recommended gamma = lam/(L (lam + Lam max(B - 1, 0))), "
    "which gives c_gamma >= gamma lam/2",
    stepsize_from="E delta_{t+1} <= (1 + u) E delta_t - c_gamma E||grad f||^2 + psi (the ABC bound on the "
    "projected noise); the weighted sum telescopes only while c_gamma > 0",
    symbols=dict(u="L gamma^2 Lam A (the growth of delta per step from the A term)",
                 c_gamma="gamma lam (1 - L gamma/2) - (L gamma^2/2) Lam (B - 1)",
                 psi="(L gamma^2/2) Lam C (the noise floor per step)",
                 W_T="sum_{t<T} w_t = (1 - (1+u)^-T)/u (= T when A = 0)"),
    attained="with A = 0, B = 1 as GD-NC (isotropic quadratic, T -> infinity); the floor psi/c_gamma by additive "
    "noise on the isotropic quadratic"))

register(Theorem(
    id="SGD-PL", metric="f_gap", kind="UPPER", provenance="DERIVED", assumptions="A0-A5",
    estimator="sgd", needs_pl=True, bound=_sgd_pl_bound, max_stepsize=lambda c: 2 / c.L,
    recommended_stepsize=_sgd_pl_step, condition=_sgd_pl_cond,
    rate=lambda c: 1 - sgd_rho(c), floor=lambda c: sgd_psi(c) / sgd_rho(c),
    doc="E[f(W^T) - f*] <= (1-rho)^T delta0 + psi (1 - (1-rho)^T)/rho, rho = 2 mu c_gamma - u.",
    section="4.2", stepsize_text="0 < gamma < 2/L, c_gamma > 0 and rho = 2 mu c_gamma - u in (0, 1]; recommended "
    "min{lam/(L (lam + Lam max(B-1, 0))), mu lam/(2 L A Lam)}, which gives rho >= gamma mu lam/2",
    stepsize_from="E delta_{t+1} <= (1 - rho) E delta_t + psi (SGD-NC's one-step inequality with PL); a "
    "contraction needs rho in (0, 1]",
    symbols=dict(u="L gamma^2 Lam A", c_gamma="gamma lam (1 - L gamma/2) - (L gamma^2/2) Lam (B - 1)",
                 psi="(L gamma^2/2) Lam C", rho="2 mu c_gamma - u (the contraction per step)"),
    attained="exactly (EXACT-ISO-SGD) on the isotropic quadratic with additive Gaussian noise and isotropic "
    "sketches (A = 0, B = 1, C = s^2 m n, L = mu = 1)"))




# ------------------------------------------------------------------------ QGD (docs/THEORY.md 4.3)
# SGD-NC / SGD-PL with the (A, B, C) of the compressed oracle: single node A = 0, B = 1 + omega,
# C = 0; M clients A = omega L_max / M, B = 1, C = 2 omega L_max delta_inf / M.
register(Theorem(
    id="QGD-NC", metric="wavg_grad_sq", kind="UPPER", provenance="DERIVED", assumptions="A0-A3, A7u",
    estimator="qgd", bound=_sgd_nc_bound, max_stepsize=lambda c: 2 / c.L,
    recommended_stepsize=_sgd_nc_step, condition=lambda c: (_sgd_nc_cond(c) or "").replace("SGD", "QGD") or None,
    weight_u=sgd_u, doc="SGD-NC with the compressed oracle's A, B, C (Q_T when A = 0).",
    section="4.3", stepsize_text="as SGD-NC with the compressor's A, B, C: single node gamma <= lam/(L (lam + omega Lam))",
    stepsize_from="SGD-NC's condition; a compressor in U(omega) is an ABC oracle with B = 1 + omega (single node) "
    "or A = omega L_max/M, C = 2 omega L_max delta_inf/M (M clients)",
    symbols=dict(u="L gamma^2 Lam A", c_gamma="gamma lam (1 - L gamma/2) - (L gamma^2/2) Lam (B - 1)",
                 psi="(L gamma^2/2) Lam C", W_T="sum_{t<T} w_t"),
    attained="with k = d (no compression, omega = 0) as GD-NC"))

register(Theorem(
    id="QGD-PL", metric="f_gap", kind="UPPER", provenance="DERIVED", assumptions="A0-A4, A7u",
    estimator="qgd", needs_pl=True, bound=_sgd_pl_bound, max_stepsize=lambda c: 2 / c.L,
    recommended_stepsize=_sgd_pl_step, condition=lambda c: (_sgd_pl_cond(c) or "").replace("SGD", "QGD") or None,
    rate=lambda c: 1 - sgd_rho(c), floor=lambda c: sgd_psi(c) / sgd_rho(c),
    doc="SGD-PL with the compressed oracle's A, B, C (no floor on a single node).",
    section="4.3", stepsize_text="as SGD-PL with the compressor's A, B, C",
    stepsize_from="SGD-PL's condition with the compressed oracle's A, B, C",
    symbols=dict(u="L gamma^2 Lam A", c_gamma="gamma lam (1 - L gamma/2) - (L gamma^2/2) Lam (B - 1)",
                 psi="(L gamma^2/2) Lam C", rho="2 mu c_gamma - u"),
    attained="with k = d (no compression) as GD-PL: exactly on the isotropic quadratic with isotropic sketches"))
