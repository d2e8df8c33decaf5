"""Non-smooth convex: entrywise L1 regression with a planted solution (docs/THEORY.md 3(f))."""
from __future__ import annotations

import numpy as np

from ..params import Param
from .base import Problem, register


@register
class L1Regression(Problem):
    """f(W) = (1/N) ||X W - Y||_1 with Y = X W*, so f* = 0 (W* unique when rank X = m).

    Model: X iid N(0, 1) (N x m), W* iid N(0, 1), W0 = 0. Subgradient g(W) = (1/N) X^T sign(XW - Y)
    (sign(0) = 0). L_0 = sqrt(n) min{||X||_2 / sqrt(N), (1/N) sum_i ||x_i||} bounds every ||g||.
    f is homogeneous around W*: <g, W - W*> = f(W) - f* (used by the identities of docs/THEORY.md 5.5).
    Parameters: ``n_samples`` N >= m (default 40).
    """

    family = "l1-regression"

    PARAMS = (Param("n_samples", lambda c: c.m, lambda c: 4 * c.m + 9, integer=True, valid=(lambda c: c.m, 10 ** 7),
                    default=40, doc="samples N >= m"),)
    shape = (8, 12)
    smooth = False
    homogeneous = True

    def build(self, rng):
        N = int(self.params["n_samples"])
        X = rng.standard_normal((N, self.m))
        self.W_star = rng.standard_normal((self.m, self.n))
        self.X, self.Y, self.N = X, X @ self.W_star, N
        self.f_star = 0.0
        self.f_lb = 0.0
        self.L = np.inf
        self.L_0 = float(np.sqrt(self.n) * min(np.linalg.norm(X, 2) / np.sqrt(N),
                                               np.mean(np.linalg.norm(X, axis=1))))
        self.W0 = np.zeros((self.m, self.n))

    def host_arrays(self):
        return {"X": self.X, "W_star": self.W_star}

    def value(self, W):
        xp = self.bk.xp
        return xp.sum(xp.abs(self.dev["X"] @ (W - self.dev["W_star"])), axis=(-2, -1)) / self.N

    f_gap = value

    def grad(self, W):
        xp = self.bk.xp
        X = self.dev["X"]
        return X.T @ xp.sign(X @ (W - self.dev["W_star"])) / self.N
