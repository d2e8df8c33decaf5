"""Non-smooth convex results (docs/THEORY.md 4.7) and their identities on homogeneous f (5.5)."""
from __future__ import annotations

import numpy as np

from .base import Theorem, register


def _ns_applies(problem, method):
    if problem.W_star is None or problem.f_star is None:
        return f"{problem.describe()} has no known minimiser W* and f*"
    if problem.L_0 is None:
        return f"{problem.describe()} gives no subgradient bound L_0"
    return None


def _const_rule(method):
    return "polyak" not in method.capabilities


def _const_applies(problem, method):
    if not _const_rule(method):
        return "NS-CONST is about a constant stepsize; this method uses the Polyak rule"
    return _ns_applies(problem, method)


def _polyak_applies(problem, method):
    if _const_rule(method):
        return "NS-POLYAK is about the Polyak stepsize (stepsize='polyak')"
    return _ns_applies(problem, method)


def ns_const_step(c):
    """gamma* = R_M sqrt(lam/(Lam T)) / L0, the bound-optimal constant stepsize."""
    return np.sqrt(c.R_M2) * np.sqrt(c.lam_min / (c.lam_max * c.T)) / c.L0


def _positive(c):
    return None if c.gamma > 0 else f"stepsize: gamma = {c.gamma:.6g} must be > 0"


register(Theorem(
    id="NS-CONST", metric="avg_f_gap", kind="UPPER", provenance="DERIVED", assumptions="A0, A3, A8",
    estimator="subgradient", stepsize_rule="constant", needs_smooth=False, applies=_const_applies, recommended_stepsize=ns_const_step,
    condition=_positive,
    bound=lambda t, c: c.R_M2 / (2 * c.gamma * np.maximum(t, 1)) + c.gamma * c.lam_max * c.L0 ** 2 / (2 * c.lam_min),
    doc="Q_T^f = (1/T) sum_{t<T} E[f - f*] <= R_M^2/(2 gamma T) + gamma Lam L0^2/(2 lam).",
    section="4.7", stepsize_text="any constant gamma > 0; recommended gamma* = R_M sqrt(lam/(Lam T))/L0, which "
    "minimises the bound at T",
    stepsize_from="the distance recursion in the M_p^-1 metric, E||D_{t+1}||^2 <= ||D_t||^2 - 2 gamma (f - f*) + "
    "gamma^2 (Lam/lam) ||g||^2, summed over t < T; it holds for every gamma > 0",
    symbols=dict(R_M2="||W^0 - W*||^2 in the M_p^-1 norm (= ||W^0 - W*||^2/lam for isotropic sketches)",
                 L0="the subgradient bound ||g|| <= L0 (A8)"),
    attained="on homogeneous f (l1-regression) with isotropic sketches the recursion is an identity "
    "(IDENT-NS-CONST); the bound then loses only ||g||^2 <= L0^2 and E||D_T||^2 >= 0"))


def _kappa_cond(c):
    hi = 2 * c.lam_min / c.lam_max
    if not (0 < c.kappa < hi):
        return f"kappa: {c.kappa:.6g} is outside NS-POLYAK's condition 0 < kappa < 2 lam/Lam = {hi:.6g}"
    return None


register(Theorem(
    id="NS-POLYAK", metric="polyak_sum", kind="UPPER", provenance="DERIVED", assumptions="A0, A3, A8, f* known",
    estimator="subgradient", stepsize_rule="polyak", needs_smooth=False, applies=_polyak_applies, condition=_kappa_cond,
    recommended_stepsize=lambda c: 1.0, skip_t0=True,
    bound=lambda t, c: np.full(np.shape(t), c.R_M2 / (c.kappa * (2 - c.kappa * c.lam_max / c.lam_min))),
    doc="P_T = sum_{t<T} E[(f - f*)^2/||g||^2] <= R_M^2/(kappa (2 - kappa Lam/lam)) for every T.",
    section="4.7", stepsize_text="gamma_t = kappa (f(W^t) - f*)/||g^t||^2 with 0 < kappa < 2 lam/Lam "
    "(default kappa = lam/Lam, the classical Polyak step for isotropic sketches)",
    stepsize_from="substituting gamma_t in the distance recursion gives a decrease kappa (2 - kappa Lam/lam) "
    "(f - f*)^2/||g||^2 per step, positive iff kappa < 2 lam/Lam",
    symbols=dict(R_M2="||W^0 - W*||^2 in the M_p^-1 norm", kappa="the Polyak scale"),
    attained="with equality (IDENT-NS-POLYAK) on homogeneous f with isotropic sketches and kappa = 1, as T -> "
    "infinity"))


def _ident_applies(problem, method, polyak):
    reason = (_polyak_applies if polyak else _const_applies)(problem, method)
    if reason:
        return reason
    if not problem.homogeneous:
        return "the identities need f homogeneous around W*: <g, W - W*> = f(W) - f* (l1-regression)"
    if "isotropic" not in method.capabilities:
        return "the identities need isotropic sketches (M_p = lam I)"
    kappa = method.estimator.constants(problem).get("kappa")
    if polyak and kappa is not None and kappa != 1.0:
        return "IDENT-NS-POLYAK is stated for kappa = 1"
    return None


register(Theorem(
    id="IDENT-NS-CONST", metric="identity", kind="EXACT", provenance="docs/THEORY.md 5.5", estimator="subgradient",
    stepsize_rule="constant",
    needs_smooth=False, applies=lambda p, m: _ident_applies(p, m, False), condition=_positive,
    recommended_stepsize=ns_const_step, skip_t0=True,
    measure=lambda M, c: 2 * c.gamma * c.lam_min * M["t"] * M["avg_f_gap"] + M["dist_sq"]
    - c.gamma ** 2 * c.lam_min * M["t"] * M["avg_grad_sq"],
    bound=lambda t, c: np.full(np.shape(t), c.dist0_sq),
    doc="2 gamma lam sum E[f - f*] + E||W^T - W*||^2 - gamma^2 lam sum E||g||^2 = ||W0 - W*||^2.",
    section="5.5", stepsize_text="any constant gamma > 0",
    stepsize_from="an identity: every inequality of NS-CONST's proof is an equality for homogeneous f "
    "(<g, W - W*> = f - f*) and M_p = lam I",
    symbols=dict(dist0_sq="||W^0 - W*||^2")))

register(Theorem(
    id="IDENT-NS-POLYAK", metric="identity", kind="EXACT", provenance="docs/THEORY.md 5.5", estimator="subgradient",
    stepsize_rule="polyak",
    needs_smooth=False, applies=lambda p, m: _ident_applies(p, m, True), recommended_stepsize=lambda c: 1.0,
    skip_t0=True, measure=lambda M, c: M["polyak_sum"] + M["dist_sq"] / c.lam_min,
    bound=lambda t, c: np.full(np.shape(t), c.dist0_sq / c.lam_min),
    doc="(kappa = 1) sum E[(f - f*)^2/||g||^2] + E||W^T - W*||^2/lam = ||W0 - W*||^2/lam.",
    section="5.5", stepsize_text="the Polyak step with kappa = 1",
    stepsize_from="an identity: NS-POLYAK's proof with equalities (homogeneous f, M_p = lam I, kappa = 1)",
    symbols=dict(dist0_sq="||W^0 - W*||^2")))
