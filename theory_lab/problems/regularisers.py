"""Separable regularisers r(x) = weight * sum_j rho(x_j), written once for every family that uses them.

* :class:`NonConvex` (docs/THEORY.md 3(d)): rho(u) = u^2/(1+u^2), rho'(u) = 2u/(1+u^2)^2, with
  -1/2 <= rho'' <= 2, so it adds 2 weight to L and at most weight/2 of negative curvature.
* :class:`Ridge`: rho(u) = u^2/2, rho' = u: adds weight to L and to mu.

Every method works on numpy or torch arrays (``xp`` the array namespace) and sums over ``axis``.
``bregman(x, y)`` is r(x) - r(y) - <r'(y), x - y>, computed without cancellation, so gaps
f(x) - f(y) near a minimiser y keep their relative accuracy (see LinregNoncvx.f_gap).
"""
from __future__ import annotations


class Ridge:
    """weight/2 ||x||^2."""

    def __init__(self, weight: float):
        self.weight = float(weight)

    @property
    def L(self) -> float:
        return self.weight

    def value(self, x, xp, axis=-1):
        return 0.5 * self.weight * xp.sum(x * x, axis=axis)

    def grad(self, x, xp=None):
        return self.weight * x

    def bregman(self, x, y, xp, axis=-1):
        d = x - y
        return 0.5 * self.weight * xp.sum(d * d, axis=axis)


class NonConvex:
    """weight * sum_j x_j^2 / (1 + x_j^2)."""

    def __init__(self, weight: float):
        self.weight = float(weight)

    @property
    def L(self) -> float:
        return 2.0 * self.weight                 # max rho'' = rho''(0) = 2

    def value(self, x, xp, axis=-1):
        return self.weight * xp.sum(x * x / (1.0 + x * x), axis=axis)

    def grad(self, x, xp=None):
        return self.weight * 2.0 * x / (1.0 + x * x) ** 2

    def bregman(self, x, y, xp, axis=-1):
        """rho(x) - rho(y) - rho'(y)(x - y) = (x - y)^2 (1 - y^2 - 2 x y) / ((1 + x^2)(1 + y^2)^2), exactly."""
        d = x - y
        return self.weight * xp.sum(d * d * (1.0 - y * y - 2.0 * x * y) / ((1.0 + x * x) * (1.0 + y * y) ** 2),
                                    axis=axis)
