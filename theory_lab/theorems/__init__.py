"""The registry of docs/THEORY.md's theorems: metric, stepsize condition, bound, kind, provenance.

Modules: ``gd_sgd`` (4.1-4.3), ``variance_reduced`` (4.4-4.6), ``nonsmooth`` (4.7, 5.5), ``exact`` (5.1-5.2).

A theorem bounds (UPPER) or equals (EXACT) the seed-mean of a metric at every checkpoint t.
``bound(t, c)`` takes the checkpoint array and the constants object ``c`` (attributes L, mu,
f_star, delta0, lam_min, lam_max, gamma, p, rank, m, n, and the estimator's A, B, C, ...).
Users register their own with ``Theorem(id=..., metric=..., bound=..., max_stepsize=...)``.
"""
from __future__ import annotations

from .base import (TEXT_FIELDS, THEOREMS, Constants, Theorem, get_theorem, register, resolve_theorem,  # noqa: F401
                   select_theorem, unknown_constants)
from . import exact, gd_sgd, nonsmooth, variance_reduced  # noqa: E402,F401  (register the theorems)

__all__ = ["THEOREMS", "Constants", "Theorem", "get_theorem", "register", "resolve_theorem", "select_theorem",
           "unknown_constants"]
