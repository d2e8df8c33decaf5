"""The registry of docs/THEORY.md's theorems: ``Theorem``, ``Constants`` and the registry are in
``theorems.base``; the theorems register themselves from ``gd_sgd``, ``variance_reduced``, ``nonsmooth``
and ``exact``; their words (``show``, docs/theorems.md) are built by ``theorems.reference``."""
from __future__ import annotations

from .base import (TEXT_FIELDS, THEOREMS, Constants, Theorem, get_theorem, register, resolve_theorem,  # noqa: F401
                   select_theorem, unknown_constants)
from . import exact, gd_sgd, nonsmooth, variance_reduced  # noqa: E402,F401  (register the theorems)

__all__ = ["THEOREMS", "Constants", "Theorem", "get_theorem", "register", "resolve_theorem", "select_theorem",
           "unknown_constants"]
