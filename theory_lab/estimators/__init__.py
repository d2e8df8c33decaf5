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

from .base import ESTIMATORS, Estimator, evolve, make_estimator, pick, register
from . import basic, distributed, variance_reduced  # noqa: E402,F401  (register the estimators)

__all__ = ["ESTIMATORS", "Estimator", "evolve", "make_estimator", "pick", "register"]
