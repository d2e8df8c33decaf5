"""Gradient estimators G^t (docs/THEORY.md section 4): the base class and contract are in
``estimators.base``; the built-in estimators register themselves from their modules."""
from __future__ import annotations

from .base import ESTIMATORS, Estimator, evolve, make_estimator, pick, register
from . import basic, distributed, variance_reduced  # noqa: E402,F401  (register the estimators)

__all__ = ["ESTIMATORS", "Estimator", "evolve", "make_estimator", "pick", "register"]
