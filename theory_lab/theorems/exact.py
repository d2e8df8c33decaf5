"""Exact results on the isotropic quadratic (docs/THEORY.md 5.1, 5.2), checked two-sidedly."""
from __future__ import annotations

from .base import Theorem, register


# ------------------------------------------------------------------------ exact (docs/THEORY.md 5.1-5.2)
def _iso_applies(problem, method, noise=False):
    if not problem.isotropic_quadratic:
        return "exact results need an isotropic quadratic f = 1/2 ||W - W*||^2 + f* (quadratic-iso)"
    if "isotropic" not in method.capabilities:
        return "exact results need isotropic sketches (E H = (r/d) I)"
    if noise and "additive-noise" not in method.capabilities:
        return "EXACT-ISO-SGD needs additive Gaussian noise"
    return None


def _q_exact(c):
    return 1 - (2 * c.gamma - c.gamma ** 2) * c.lam_min


def _iso_cond(c):
    if not (0 < c.gamma < 2):
        return f"stepsize: gamma = {c.gamma:.6g} is outside the exact formula's range 0 < gamma < 2"
    return None


register(Theorem(
    id="EXACT-ISO", metric="f_gap", kind="EXACT", provenance="docs/THEORY.md 5.1", estimator="gd",
    applies=_iso_applies, bound=lambda t, c: _q_exact(c) ** t * c.delta0,
    max_stepsize=lambda c: 2.0, recommended_stepsize=lambda c: 1.0, condition=_iso_cond, rate=_q_exact,
    doc="f = 1/2||W - W*||^2, isotropic sketches: E f(W^T) = (1 - (2 gamma - gamma^2) lam)^T f(W0).",
    section="5.1", stepsize_text="0 < gamma < 2 (recommended 1)",
    stepsize_from="f(W+) = f(W) - (gamma - gamma^2/2) ||S D||^2 exactly, so E f_{t+1} = (1 - (2 gamma - gamma^2) lam) "
    "E f_t when M_p = lam I; the factor is in [0, 1) iff gamma in (0, 2)"))


def _iso_sgd_bound(t, c):
    q = _q_exact(c)
    psi = (c.gamma ** 2 / 2) * c.noise_std ** 2 * c.m * c.n * c.lam_min
    return q ** t * c.delta0 + psi * (1 - q ** t) / (1 - q)


register(Theorem(
    id="EXACT-ISO-SGD", metric="f_gap", kind="EXACT", provenance="docs/THEORY.md 5.2", estimator="sgd",
    applies=lambda pr, me: _iso_applies(pr, me, noise=True), bound=_iso_sgd_bound,
    max_stepsize=lambda c: 2.0, recommended_stepsize=lambda c: 1.0, condition=_iso_cond, rate=_q_exact,
    floor=lambda c: c.gamma * c.noise_std ** 2 * c.m * c.n / (2 * (2 - c.gamma)),
    doc="E f_T = q^T f_0 + psi (1 - q^T)/(1 - q), psi = (gamma^2/2) s^2 tr M_p, tr M_p = mn lam.",
    section="5.2", stepsize_text="0 < gamma < 2 (recommended 1)",
    stepsize_from="EXACT-ISO's one-step identity plus the projected noise's second moment (gamma^2/2) s^2 tr M_p",
    symbols=dict(noise_std="s, the standard deviation of the additive noise per entry",
                 q="1 - (2 gamma - gamma^2) lam", psi="(gamma^2/2) s^2 m n lam")))


