"""Declared parameters of a variant (estimator, problem family, sketch law): one declaration for its
range, its meaning and how the falsification engine draws it, including the *corners* where a
theorem's bound is attained (PAGE's q = 1, a compressor keeping all d entries, MVR's momentum 1, an
isotropic spectrum). ``draw`` gives a corner with probability ``corner_mass``, else a value from the
range (log-uniform with ``log``), so a search reaches the tight configurations that a uniform draw
almost never visits.

A range or corner may depend on the configuration being drawn (the problem's m, n, N): give a
function of a context object with attributes ``m``, ``n``, ``N`` (``Context``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Context:
    """What a draw may depend on: the problem's shape and number of summands."""

    m: int = 2
    n: int = 2
    N: int | None = None

    @property
    def d(self) -> int:
        return self.m * self.n


def _value(x, ctx: Context):
    return x(ctx) if callable(x) else x


@dataclass(frozen=True)
class Param:
    """One parameter: ``low``/``high`` bound the values drawn (numbers or functions of a ``Context``),
    ``choices`` for words (a tuple, or a function giving one: a registry that grows), ``log`` draws log-uniformly, ``integer`` rounds, ``corners`` are the
    values where theory is attained (drawn with probability ``corner_mass`` in total)."""

    name: str
    low: Any = None
    high: Any = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()
    corners: tuple = ()
    corner_mass: float = 0.3
    doc: str = ""
    #: the accepted range (low, high) when the parameter is given (None: the draw range, when numeric);
    #: its ends may be functions of a ``Context`` (checked once the problem is known)
    valid: tuple | None = None
    #: the accepted range excludes its low / high end
    low_open: bool = False
    high_open: bool = False
    #: None is accepted (a default resolved per problem, e.g. PAGE's q = b/(b + N))
    optional: bool = False
    #: drawn by the falsification engine (False: validated only, e.g. the subgradient's kappa)
    fuzz: bool = True
    #: the value when not given (problem families build their defaults from it)
    default: Any = None
    #: words accepted besides the range (e.g. "lambda_max" for a value computed from the data)
    also: tuple = ()
    #: the value is an interval [low, high], low <= high, both ends in the accepted range (a spectrum)
    interval: bool = False

    def check(self, value, ctx: Context | None = None):
        """``value`` validated against the accepted range (InputError naming the parameter and the
        range). Ends that depend on the problem are checked when ``ctx`` is given."""
        from .errors import InputError, check_bool, check_range

        if value is None and self.optional:
            return None
        if isinstance(value, str) and value in self.also:
            return value
        if self.interval:
            if not (isinstance(value, (list, tuple)) and len(value) == 2):
                raise InputError(self.name, f"expected [low, high] with low <= high, got {value!r}")
            lo = Param(f"{self.name}[0]", self.low, self.high, valid=self.valid, low_open=self.low_open,
                       high_open=self.high_open).check(value[0], ctx)
            hi = Param(f"{self.name}[1]", self.low, self.high, valid=(lo, (self.valid or (None, self.high))[1]),
                       high_open=self.high_open).check(value[1], ctx)
            return [lo, hi]
        if self.choices:
            choices = self.options
            if set(choices) == {True, False}:
                return check_bool(self.name, value)
            words = all(isinstance(c, str) for c in choices)
            if (words and not isinstance(value, str)) or value not in choices:
                raise InputError(self.name, f"got {value!r}; accepted: {', '.join(map(str, choices))}")
            return value
        lo, hi = self.valid if self.valid is not None else (self.low, self.high)
        lo = (None if ctx is None else lo(ctx)) if callable(lo) else lo
        hi = (None if ctx is None else hi(ctx)) if callable(hi) else hi
        return check_range(self.name, value, lo, hi, low_open=self.low_open, high_open=self.high_open,
                           integer=self.integer)

    @property
    def options(self) -> tuple:
        """The accepted words (``choices``, called when it is a function)."""
        return tuple(self.choices()) if callable(self.choices) else tuple(self.choices)

    def draw(self, rng: np.random.Generator, ctx: Context | None = None, corner: bool = False):
        """A value: a corner with probability ``corner_mass`` (always with ``corner``), else from the range
        (an interval parameter: [low, low], overridden by families that spread it)."""
        ctx = ctx or Context()
        if self.interval:
            v = Param(self.name, self.low, self.high, log=self.log).draw(rng, ctx)
            return [v, v]
        if self.corners and (corner or rng.random() < self.corner_mass):
            return self._cast(_value(self.corners[int(rng.integers(len(self.corners)))], ctx))
        if self.choices:
            return self.options[int(rng.integers(len(self.options)))]
        lo, hi = float(_value(self.low, ctx)), float(_value(self.high, ctx))
        if self.integer:
            return int(rng.integers(int(lo), int(hi) + 1))
        if self.log:
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return float(rng.uniform(lo, hi))

    def _cast(self, v):
        return int(v) if self.integer else (float(v) if isinstance(v, (int, float, np.number)) else v)

    def corner_values(self, ctx: Context | None = None) -> list:
        ctx = ctx or Context()
        return [self._cast(_value(c, ctx)) for c in self.corners]

    def perturb(self, value, rng: np.random.Generator, ctx: Context | None = None, scale: float = 0.3):
        """A nearby value for a local search (a corner with probability ``corner_mass``), within the range."""
        ctx = ctx or Context()
        if not self.fuzz:
            return value                     # a parameter the engine does not draw (e.g. Polyak's kappa)
        if self.corners and rng.random() < self.corner_mass:
            return self._cast(_value(self.corners[int(rng.integers(len(self.corners)))], ctx))
        if (self.choices or self.low is None or self.high is None or self.interval
                or not isinstance(value, (int, float)) or isinstance(value, bool)):
            return value                     # words and intervals stay
        lo, hi = float(_value(self.low, ctx)), float(_value(self.high, ctx))
        new = value * math.exp(rng.normal(0, scale)) if self.log and value > 0 else value + rng.normal(0, scale) * (hi - lo)
        new = min(max(new, lo), hi)
        return int(round(new)) if self.integer else float(new)


def draw_all(params: tuple[Param, ...], rng: np.random.Generator, ctx: Context | None = None,
             skip: Callable[[str], bool] | None = None, corner: bool = False) -> dict:
    """Every declared parameter drawn (those ``skip`` names left out); ``corner``: each at a corner
    where it declares one (the joint corner where theory is attained)."""
    return {p.name: p.draw(rng, ctx, corner) for p in params if p.fuzz and not (skip and skip(p.name))}


def check_all(params: tuple[Param, ...], values: dict, ctx: Context | None = None) -> dict:
    """``values`` with every declared parameter among them validated (``Param.check``); undeclared
    keys pass through unchanged."""
    decl = {p.name: p for p in params}
    return {k: (decl[k].check(v, ctx) if k in decl else v) for k, v in values.items()}


__all__ = ["Context", "Param", "check_all", "draw_all"]
