"""Gradient estimators G^t (docs/THEORY.md section 4), one small object per variant.

An estimator is a pair of functions in the optax style:

    init(problem, W, streams) -> state
    estimate(problem, state, W, W_prev, t, streams) -> (G, state)

where W is the batch of iterates (S, m, n), W_prev the previous one, and G the estimate used for
the step from W^t. It is called at t = 0 .. T (the extra call at T gives G^T for Lyapunov functions,
docs/THEORY.md 4.0). ``error(problem, state, W, grad)`` returns the per-seed estimator error e_t (EF21:
its client-averaged error), ``constants(problem)`` the estimator's constants for the theorems.
States are small namespaces with per-seed arrays, never mutated: ``estimate`` returns a new one
(:func:`evolve`); ``epochs`` (gradient cost in full passes over the data) and ``bits`` (sent per
client) are cumulative counters the runner records.

Configuration is immutable too: ``resolve(problem)`` returns a new estimator whose defaults that
depend on the problem (SGD's noise model, PAGE's q, ...) are filled in; the original is untouched,
so one ``Method`` can be used on any number of problems.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any, ClassVar

from ..errors import InputError

ESTIMATORS: dict[str, type["Estimator"]] = {}


def register(cls):
    ESTIMATORS[cls.name] = cls
    return cls


class Estimator:
    name: ClassVar[str] = ""
    #: True when G^t is the exact gradient (the runner then reuses it for grad_sq)
    exact: ClassVar[bool] = False
    #: True when the estimator keeps G^t across steps (its error e_t is a metric)
    tracks_error: ClassVar[bool] = False
    #: scalar parameters that may differ between the trajectories of a batched run, with the
    #: number of axes their per-trajectory array takes: 1 -> (S,), 3 -> (S, 1, 1)
    vector_params: ClassVar[dict[str, int]] = {}

    def __init__(self, **params):
        self._params = dict(params)

    @property
    def params(self) -> dict[str, Any]:
        """The configuration (a copy: estimators are immutable)."""
        return dict(self._params)

    @classmethod
    def accepted(cls) -> tuple[str, ...]:
        """Names of the keyword parameters this estimator takes (from its signature)."""
        sig = inspect.signature(cls.__init__)
        return tuple(k for k, v in sig.parameters.items()
                     if k != "self" and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY))

    def resolve(self, problem) -> "Estimator":
        """A copy with problem-dependent defaults filled in and every parameter checked against
        ``problem``; raises InputError naming the field. The default has nothing to fill."""
        return self

    def validate(self, problem) -> None:
        """Check parameters against the problem; raise InputError naming the field."""
        self.resolve(problem)

    def batched(self, **vectors) -> "Estimator":
        """A copy whose ``vector_params`` hold per-trajectory arrays (runner.execute_batch); used
        only inside the loop (``params`` and ``constants`` stay those of one configuration)."""
        return self._with(**vectors) if vectors else self

    def _with(self, **changes) -> "Estimator":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._params = {**self._params, **changes}
        return new

    def init(self, problem, W, streams):
        return SimpleNamespace(G=None, epochs=0.0, bits=0.0)

    def estimate(self, problem, state, W, W_prev, t, streams):
        raise NotImplementedError

    def error(self, problem, state, W, grad):
        """e_t = ||G^t - grad f(W^t)||^2 per seed."""
        xp = problem.bk.xp
        D = state.G - grad
        return xp.sum(D * D, axis=(-2, -1))

    def constants(self, problem) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return dict(self.params)


def evolve(state, **changes):
    """A new state with ``changes`` (states are values; the old one is left as it was)."""
    return SimpleNamespace(**{**vars(state), **changes})


def pick(xp, cond, a: float, b: float):
    """a where cond else b, as float64 per seed (torch's where would make Python scalars float32)."""
    c = xp.astype(cond, xp.float64)
    return a * c + b * (1.0 - c)


def make_estimator(name: str, **params) -> Estimator:
    if name not in ESTIMATORS:
        raise InputError("estimator", f"unknown estimator {name!r}; accepted: {', '.join(ESTIMATORS)}")
    try:
        return ESTIMATORS[name](**params)
    except TypeError as exc:
        raise InputError("method", f"bad estimator parameter for {name}: {exc}") from None


from . import basic, distributed, variance_reduced  # noqa: E402,F401  (register the estimators)
