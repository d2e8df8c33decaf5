"""The registry of THEORY.md's theorems: metric, stepsize condition, bound, kind, provenance.

A theorem bounds (UPPER) or equals (EXACT) the seed-mean of a metric at every checkpoint t.
``bound(t, c)`` takes the checkpoint array and the constants object ``c`` (attributes L, mu,
f_star, delta0, lam_min, lam_max, gamma, p, rank, m, n, and the estimator's A, B, C, ...).
Users register their own with ``Theorem(id=..., metric=..., bound=..., max_stepsize=...)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import InputError


class Constants:
    """Attribute access to the constants handed to bounds; a missing one raises a clear error."""

    def __init__(self, **values):
        self.__dict__["_v"] = dict(values)

    def __getattr__(self, name):
        try:
            return self.__dict__["_v"][name]
        except KeyError:
            raise AttributeError(f"constant {name!r} is not defined for this problem/method; "
                                 f"available: {', '.join(sorted(self.__dict__['_v']))}") from None

    def __setattr__(self, name, value):
        self.__dict__["_v"][name] = value

    def get(self, name, default=None):
        return self.__dict__["_v"].get(name, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__["_v"])

    def replace(self, **kw) -> "Constants":
        return Constants(**{**self.as_dict(), **kw})


@dataclass
class Theorem:
    """A rate bound (or exact formula) checked against measurement.

    Parameters
    ----------
    id : THEORY.md ID (or the user's own)
    metric : measured metric name (f_gap, grad_sq, avg_grad_sq, wavg_grad_sq, dist_sq, ...)
    bound : (t: ndarray of checkpoints, c: Constants) -> ndarray, the bound at each checkpoint
    max_stepsize : c -> largest admissible gamma (condition 0 < gamma <= max_stepsize)
    kind : "UPPER" or "EXACT"
    recommended_stepsize : c -> the bound-optimal gamma within the condition (default max_stepsize)
    condition : c -> None when gamma is admissible, else the reason (default from max_stepsize)
    rate : c -> theoretical per-step contraction q_th for linear rates (None: sublinear)
    floor : c -> noise floor of the metric (rate fits stop 10x above it)
    applies : (problem, method) -> None when the assumptions hold, else the reason
    estimator : estimator family covered (None: any)
    skip_t0 : do not test t = 0 (averaged metrics are undefined there)
    """

    id: str
    metric: str
    bound: Callable[[np.ndarray, Constants], Any]
    max_stepsize: Callable[[Constants], float] | None = None
    kind: str = "UPPER"
    provenance: str = "user"
    assumptions: str = ""
    recommended_stepsize: Callable[[Constants], float] | None = None
    condition: Callable[[Constants], str | None] | None = None
    rate: Callable[[Constants], float] | None = None
    floor: Callable[[Constants], float] | None = None
    applies: Callable[[Any, Any], str | None] | None = None
    estimator: str | None = None
    skip_t0: bool = False
    weight_u: Callable[[Constants], float] | None = None
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in ("UPPER", "EXACT"):
            raise InputError("kind", f"got {self.kind!r}; accepted: UPPER, EXACT")
        if self.metric in ("avg_grad_sq", "wavg_grad_sq"):
            self.skip_t0 = True

    def stepsize_reason(self, c: Constants) -> str | None:
        """None if c.gamma satisfies the theorem's condition, else a one-line reason."""
        if self.condition is not None:
            return self.condition(c)
        if self.max_stepsize is not None:
            g = self.max_stepsize(c)
            if not (0 < c.gamma <= g * (1 + 1e-12)):
                return f"stepsize: gamma = {c.gamma:.6g} is outside {self.id}'s condition 0 < gamma <= {g:.6g}"
        return None

    def recommended(self, c: Constants) -> float:
        fn = self.recommended_stepsize or self.max_stepsize
        if fn is None:
            raise InputError("stepsize", f"{self.id} recommends no stepsize; give a number")
        return float(fn(c))

    def evaluate(self, t: np.ndarray, c: Constants) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.bound(np.asarray(t, dtype=float), c), dtype=float),
                               np.shape(t)).astype(float)


THEOREMS: dict[str, Theorem] = {}


def register(thm: Theorem) -> Theorem:
    THEOREMS[thm.id] = thm
    return thm


def get_theorem(theorem_id: str) -> Theorem:
    if theorem_id not in THEOREMS:
        raise InputError("theorem", f"unknown theorem {theorem_id!r}; accepted: {', '.join(THEOREMS)}")
    return THEOREMS[theorem_id]


def select_theorem(problem, method) -> Theorem | None:
    """The theorem matching the method's estimator and the problem's class: EXACT results first,
    then PL (when the problem is PL), then NC."""
    cands = [th for th in THEOREMS.values() if th.estimator == method.spec.estimator
             and (th.applies is None or th.applies(problem, method) is None)]
    order = {"EXACT": 0}
    cands.sort(key=lambda th: (order.get(th.kind, 1), 0 if th.id.endswith("-PL") else 1))
    return cands[0] if cands else None


def _lt_2_over_L(id_):
    def cond(c):
        if not (0 < c.gamma < 2 / c.L):
            return f"stepsize: gamma = {c.gamma:.6g} is outside {id_}'s condition 0 < gamma < 2/L = {2 / c.L:.6g}"
        return None
    return cond


def _needs_pl(problem, method):
    return None if problem.is_pl else f"{problem.family} is not PL (no mu and f*)"


# ------------------------------------------------------------------------ GD (THEORY.md 4.1)
register(Theorem(
    id="GD-NC", metric="avg_grad_sq", kind="UPPER", provenance="RAC (gamma <= 1/L); DERIVED (gamma < 2/L)",
    assumptions="A0-A3", estimator="gd",
    bound=lambda t, c: c.delta0 / (c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min * np.maximum(t, 1)),
    max_stepsize=lambda c: 2 / c.L, recommended_stepsize=lambda c: 1 / c.L,
    condition=_lt_2_over_L("GD-NC"),
    doc="Q_T = (1/T) sum_{t<T} E||grad f(W^t)||^2 <= delta0 / (gamma (1 - L gamma/2) lam_min T)."))

register(Theorem(
    id="GD-PL", metric="f_gap", kind="UPPER", provenance="RAC (gamma <= 1/L); DERIVED (gamma < 2/L)",
    assumptions="A0-A4", estimator="gd", applies=_needs_pl,
    bound=lambda t, c: (1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min) ** t * c.delta0,
    max_stepsize=lambda c: 2 / c.L, recommended_stepsize=lambda c: 1 / c.L,
    condition=_lt_2_over_L("GD-PL"),
    rate=lambda c: 1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min,
    doc="E[f(W^T) - f*] <= (1 - 2 mu gamma (1 - L gamma/2) lam_min)^T (f(W0) - f*)."))


# ------------------------------------------------------------------------ SGD (THEORY.md 4.2)
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
    doc="Q_T^w <= delta0/(c_gamma W_T) + psi/c_gamma, w_t = (1+u)^-(t+1)."))

register(Theorem(
    id="SGD-PL", metric="f_gap", kind="UPPER", provenance="DERIVED", assumptions="A0-A5",
    estimator="sgd", applies=_needs_pl, bound=_sgd_pl_bound, max_stepsize=lambda c: 2 / c.L,
    recommended_stepsize=_sgd_pl_step, condition=_sgd_pl_cond,
    rate=lambda c: 1 - sgd_rho(c), floor=lambda c: sgd_psi(c) / sgd_rho(c),
    doc="E[f(W^T) - f*] <= (1-rho)^T delta0 + psi (1 - (1-rho)^T)/rho, rho = 2 mu c_gamma - u."))


# ------------------------------------------------------------------------ exact (THEORY.md 5.1-5.2)
def _iso_applies(problem, method, noise=False):
    if problem.family != "quadratic-iso":
        return "exact results need the isotropic quadratic (quadratic-iso)"
    if not method.isotropic:
        return "exact results need isotropic sketches (E H = (r/d) I)"
    if noise and method.estimator.params.get("noise") not in ("additive", "auto"):
        return "EXACT-ISO-SGD needs additive Gaussian noise"
    return None


def _q_exact(c):
    return 1 - (2 * c.gamma - c.gamma ** 2) * c.lam_min


def _iso_cond(c):
    if not (0 < c.gamma < 2):
        return f"stepsize: gamma = {c.gamma:.6g} is outside the exact formula's range 0 < gamma < 2"
    return None


register(Theorem(
    id="EXACT-ISO", metric="f_gap", kind="EXACT", provenance="THEORY.md 5.1", estimator="gd",
    applies=_iso_applies, bound=lambda t, c: _q_exact(c) ** t * c.delta0,
    max_stepsize=lambda c: 2.0, recommended_stepsize=lambda c: 1.0, condition=_iso_cond, rate=_q_exact,
    doc="f = 1/2||W - W*||^2, isotropic sketches: E f(W^T) = (1 - (2 gamma - gamma^2) lam)^T f(W0)."))


def _iso_sgd_bound(t, c):
    q = _q_exact(c)
    psi = (c.gamma ** 2 / 2) * c.noise_std ** 2 * c.m * c.n * c.lam_min
    return q ** t * c.delta0 + psi * (1 - q ** t) / (1 - q)


register(Theorem(
    id="EXACT-ISO-SGD", metric="f_gap", kind="EXACT", provenance="THEORY.md 5.2", estimator="sgd",
    applies=lambda pr, me: _iso_applies(pr, me, noise=True), bound=_iso_sgd_bound,
    max_stepsize=lambda c: 2.0, recommended_stepsize=lambda c: 1.0, condition=_iso_cond, rate=_q_exact,
    floor=lambda c: c.gamma * c.noise_std ** 2 * c.m * c.n / (2 * (2 - c.gamma)),
    doc="E f_T = q^T f_0 + psi (1 - q^T)/(1 - q), psi = (gamma^2/2) s^2 tr M_p, tr M_p = mn lam."))


def isfinite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0
