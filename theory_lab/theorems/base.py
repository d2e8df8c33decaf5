"""The registry of docs/THEORY.md's theorems: metric, stepsize condition, bound, kind, provenance.

Modules: ``gd_sgd`` (4.1-4.3), ``variance_reduced`` (4.4-4.6), ``nonsmooth`` (4.7, 5.5), ``exact`` (5.1-5.2).

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

from ..errors import InputError


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
        raise AttributeError(f"Constants are immutable; use c.replace({name}=...)")

    def __getstate__(self):
        return self.__dict__["_v"]

    def __setstate__(self, state):
        self.__dict__["_v"] = dict(state)

    def get(self, name, default=None):
        return self.__dict__["_v"].get(name, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__["_v"])

    def replace(self, **kw) -> "Constants":
        return Constants(**{**self.as_dict(), **kw})


@dataclass(frozen=True)
class Theorem:
    """A rate bound (or exact formula) checked against measurement.

    Parameters
    ----------
    id : docs/THEORY.md ID (or the user's own)
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
    #: per-seed measured values from the run's metrics when not a plain metric (Lyapunov functions,
    #: identities): (metrics: name -> (S, K) array, c) -> (S, K)
    measure: Callable[[dict, Constants], Any] | None = None
    #: the theorem needs an L-smooth f (False for the non-smooth results of 4.7)
    needs_smooth: bool = True
    #: the theorem needs the PL inequality with known mu and f* (assumption A4)
    needs_pl: bool = False
    #: the bound is a one-step contraction E Phi_{t+1} <= q E Phi_t (docs/THEORY.md 7.4: every window's
    #: fitted rate must be <= q_th)
    one_step: bool = False
    #: the stepsize rule the theorem is about: "polyak", "constant", or None (a number or the
    #: theorem's recommendation); read by the fuzz engine from the object, never from the ID
    stepsize_rule: str | None = None
    doc: str = ""
    extra: dict = field(default_factory=dict)
    #: the theorem's reference text (``theory-lab show ID``, docs/theorems.md): the section of
    #: docs/THEORY.md it comes from, its stepsize condition in words, where that condition comes from
    #: in the proof, the symbols it uses beyond the common ones (``reference.SYMBOLS``) and where the
    #: bound is attained (the configurations that make it tight)
    section: str = ""
    stepsize_text: str = ""
    stepsize_from: str = ""
    symbols: dict = field(default_factory=dict)
    attained: str = ""

    def __post_init__(self):
        if self.kind not in ("UPPER", "EXACT"):
            raise InputError("kind", f"got {self.kind!r}; accepted: UPPER, EXACT")
        if self.stepsize_rule not in (None, "polyak", "constant"):
            raise InputError("stepsize_rule", f"got {self.stepsize_rule!r}; accepted: None, 'polyak', 'constant'")
        if self.metric in ("avg_grad_sq", "wavg_grad_sq"):
            object.__setattr__(self, "skip_t0", True)      # frozen: set once, on construction

    def stepsize_reason(self, c: Constants) -> str | None:
        """None if c.gamma satisfies the theorem's condition, else a one-line reason."""
        if self.condition is not None:
            return self.condition(c)
        if self.max_stepsize is not None:
            g = self.max_stepsize(c)
            if not (0 < c.gamma <= g * (1 + 1e-12)):
                return f"stepsize: gamma = {c.gamma:.6g} is outside {self.id}'s condition 0 < gamma <= {g:.6g}"
        return None

    def not_applicable(self, problem, method) -> str | None:
        """None when the theorem's assumptions hold for (problem, method), else the reason."""
        if self.needs_smooth and not problem.smooth:
            return f"{self.id} needs an L-smooth objective; {problem.describe()} is non-smooth"
        if self.needs_pl and not problem.is_pl:
            return f"{self.id} needs a PL objective (A4); {problem.describe()} is not PL (no mu and f*)"
        return self.applies(problem, method) if self.applies is not None else None

    def recommended(self, c: Constants) -> float:
        fn = self.recommended_stepsize or self.max_stepsize
        if fn is None:
            raise InputError("stepsize", f"{self.id} recommends no stepsize; give a number")
        return float(fn(c))

    def largest_stepsize(self, c: Constants) -> float | None:
        """The largest gamma this theorem's condition admits on constants ``c``: its max_stepsize when
        that is admissible, else found by bisection between the recommendation and it; inf when the
        condition has no upper limit, None when not even the recommendation is admissible."""
        rec = self.recommended(c)
        ok = lambda g: self.stepsize_reason(c.replace(gamma=g)) is None      # noqa: E731
        if self.max_stepsize is None and ok(1e12 * rec):
            return math.inf                  # no upper limit (NS-CONST: any gamma > 0)
        hi = float(self.max_stepsize(c)) if self.max_stepsize is not None else 1e12 * rec
        if ok(hi):
            return hi
        lo = rec if ok(rec) else None
        if lo is None:
            return None
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        return lo

    def fingerprint(self) -> str:
        """A hash of everything that decides this theorem's verdicts: its bound, condition, stepsize
        rules and every other function it carries (by code, captured values and the globals they
        read), its metric and flags. Re-registering an ID with another bound changes it, so a sweep
        store never reuses verdicts judged against the old one."""
        from ..fingerprint import value_fingerprint

        return value_fingerprint({k: getattr(self, k) for k in self.__dataclass_fields__ if k not in TEXT_FIELDS})

    def __reduce_ex__(self, protocol):
        """Pickled by reference (ID and fingerprint) when this theorem is the one registered under its
        ID, so a resolved plan can travel to a worker process although its bound is a lambda; the
        receiving process looks the ID up and refuses another theorem under it. Otherwise by value."""
        reg = THEOREMS.get(self.id)
        if reg is not None:
            fp = self.fingerprint()
            if reg is self or reg.fingerprint() == fp:
                return (_registered, (self.id, fp))
        return super().__reduce_ex__(protocol)

    def evaluate(self, t: np.ndarray, c: Constants) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.bound(np.asarray(t, dtype=float), c), dtype=float),
                               np.shape(t)).astype(float)


def unknown_constants(fn, c: Constants) -> list[str]:
    """The constants ``fn`` (a bound or stepsize rule) names that ``c`` lacks or holds as None: what
    to tell a user when evaluating it fails, instead of Python's own message."""
    import types

    names: set[str] = set()
    seen: set[int] = set()

    def walk(code, glb, depth):
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const, glb, depth)
        for name in code.co_names:                       # helpers the rule calls (one module deep)
            helper = glb.get(name) if glb else None
            visit(helper, depth + 1)

    def visit(f, depth):
        if not isinstance(f, types.FunctionType) or id(f) in seen or depth > 3:
            return
        seen.add(id(f))
        walk(f.__code__, f.__globals__, depth)
        for cell in f.__closure__ or ():                 # rules built by a factory (lambda c: c.V)
            try:
                visit(cell.cell_contents, depth + 1)
            except ValueError:
                pass

    visit(fn, 0)
    values = c.as_dict()
    return sorted(n for n in names if n in values and values[n] is None
                  or n not in values and n in _KNOWN_CONSTANTS)


#: constant names a bound may use (docs/DESIGN.md); one missing from ``c`` is reported by name
_KNOWN_CONSTANTS = {"L", "mu", "f_star", "delta0", "lam_min", "lam_max", "gamma", "p", "rank", "m", "n", "sigma2",
                    "A", "B", "C", "q", "b", "omega", "alpha", "L_tilde", "L0", "R", "L_pm", "L_max", "delta_inf",
                    "kappa", "R_M2", "dist0_sq"}


#: a theorem's words: they explain its verdicts but do not decide them (not in its fingerprint)
TEXT_FIELDS = ("doc", "section", "stepsize_text", "stepsize_from", "symbols", "attained")

THEOREMS: dict[str, Theorem] = {}


def register(thm: Theorem) -> Theorem:
    THEOREMS[thm.id] = thm
    return thm


def _registered(theorem_id: str, fingerprint: str) -> Theorem:
    """The registered theorem an unpickled reference names (``Theorem.__reduce_ex__``)."""
    th = THEOREMS.get(theorem_id)
    if th is None:
        raise InputError("theorem", f"{theorem_id!r} is not registered in this process: register it when a module "
                         "the worker imports is imported (not inside `if __name__ == '__main__'`)")
    if th.fingerprint() != fingerprint:
        raise InputError("theorem", f"{theorem_id!r} is registered here with another bound or condition than in "
                         "the process that sent it (fingerprints differ); register the same theorem in both")
    return th


def get_theorem(theorem_id: str) -> Theorem:
    if theorem_id not in THEOREMS:
        raise InputError("theorem", f"unknown theorem {theorem_id!r}; accepted: {', '.join(THEOREMS)}")
    return THEOREMS[theorem_id]


def select_theorem(problem, method) -> Theorem | None:
    """The theorem matching the method's estimator and the problem's class: EXACT results first,
    then those needing PL (when the problem is PL), then NC."""
    if not method.spec.rule.theory:
        return None                        # factor training: outside the projected-step theory
    method = method.bind(problem)
    cands = [th for th in THEOREMS.values() if th.estimator == method.spec.estimator
             and th.not_applicable(problem, method) is None]
    cands.sort(key=lambda th: (0 if th.kind == "EXACT" else 1, 0 if th.needs_pl else 1))
    return cands[0] if cands else None


def resolve_theorem(theorem) -> Theorem | None:
    """None, a registered ID or a Theorem -> Theorem (or None)."""
    if theorem is None or isinstance(theorem, Theorem):
        return theorem
    return get_theorem(str(theorem))
