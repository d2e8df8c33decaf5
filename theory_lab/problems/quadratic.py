"""Quadratic families: isotropic (docs/THEORY.md 3(c)) and Kronecker (3(b))."""
from __future__ import annotations

import numpy as np

import math

from ..params import Param
from .base import Problem, frob_inner, register, spectral_matrix


@register
class QuadraticIso(Problem):
    """f(W) = 1/2 ||W - W*||^2 (docs/THEORY.md 3(c)).

    Model: W* has iid N(0, scale^2) entries; W0 = 0. L = mu = 1, f* = 0, grad f = W - W*.
    Parameters: ``scale`` > 0 (default 1).
    """

    family = "quadratic-iso"

    PARAMS = (Param("scale", math.exp(-1), math.exp(1.5), log=True, valid=(0.0, None), low_open=True, default=1.0,
                    doc="W* entries iid N(0, scale^2)"),)
    isotropic_quadratic = True

    def build(self, rng):
        self.W_star = self.params["scale"] * rng.standard_normal((self.m, self.n))
        self.W0 = np.zeros((self.m, self.n))
        self.f_star = 0.0
        self.L = 1.0
        self.mu = 1.0

    def host_arrays(self):
        return {"W_star": self.W_star}

    def value(self, W):
        D = W - self.dev["W_star"]
        return 0.5 * self.bk.xp.sum(D * D, axis=(-2, -1))

    f_gap = value

    def grad(self, W):
        return W - self.dev["W_star"]


@register
class KronQuadratic(Problem):
    """f(W) = f* + 1/2 <D, P D R>, D = W - W* (docs/THEORY.md 3(b)).

    Model: P (m x m) and R (n x n) symmetric with eigenvalues evenly spaced in ``p_spec`` and
    ``r_spec`` and Haar eigenvectors; W* iid N(0,1); W0 = 0; f* = ``f_star`` (default 0).
    L = max spec P * max spec R, mu = min spec P * min spec R (strongly convex, hence PL).
    """

    family = "kron-quadratic"

    PARAMS = (Param("p_spec", math.exp(-1), math.e, log=True, interval=True, valid=(0.0, None), low_open=True,
                    default=[1.0, 3.0], doc="eigenvalue range [low, high] of P"),
              Param("r_spec", 1.0, 1.0, interval=True, valid=(0.0, None), low_open=True, default=[1.0, 2.0],
                    doc="eigenvalue range [low, high] of R"),
              Param("f_star", valid=(None, None), default=0.0, fuzz=False, doc="the optimal value f*"))

    @classmethod
    def fuzz_params(cls, rng, corner=False):
        """Spectra spread up to e^2 (P) and e^1.5 (R); isotropic (P, R multiples of I: f is the
        isotropic quadratic up to scale, where GD-PL is attained) with probability 0.3 (the corner)."""
        lo = float(np.exp(rng.uniform(-1, 1)))
        if corner or rng.random() < 0.3:
            return dict(cls._fuzz_shape(rng), p_spec=[lo, lo], r_spec=[1.0, 1.0])
        return dict(cls._fuzz_shape(rng), p_spec=[lo, lo * float(np.exp(rng.uniform(0, 2)))],
                    r_spec=[1.0, float(np.exp(rng.uniform(0, 1.5)))])

    def build(self, rng):
        pe = np.linspace(*self.params["p_spec"], self.m)
        re = np.linspace(*self.params["r_spec"], self.n)
        self.P = spectral_matrix(rng, self.m, pe)
        self.R = spectral_matrix(rng, self.n, re)
        self.W_star = rng.standard_normal((self.m, self.n))
        self.W0 = np.zeros((self.m, self.n))
        self.f_star = float(self.params["f_star"])
        self.L = float(pe.max() * re.max())
        self.mu = float(pe.min() * re.min())

    def host_arrays(self):
        return {"P": self.P, "R": self.R, "W_star": self.W_star}

    def grad(self, W):
        D = W - self.dev["W_star"]
        return self.dev["P"] @ D @ self.dev["R"]

    def f_gap(self, W):
        D = W - self.dev["W_star"]
        return 0.5 * self.bk.xp.sum(D * (self.dev["P"] @ D @ self.dev["R"]), axis=(-2, -1))

    def value(self, W):
        return self.f_star + self.f_gap(W)

    def f_gap_given_grad(self, W, grad):
        # quadratic: f - f* = 1/2 <W - W*, grad f(W)> exactly
        return 0.5 * frob_inner(W - self.dev["W_star"], grad, self.bk.xp)


@register
class LoraCounterexample(Problem):
    """The RAC-LoRA counter-example (docs/THEORY.md 3(g)): f(W) = 1/2 sum_ij q_ij (W_ij - W*_ij)^2 with
    q_11 = ``q11`` (default 10) and every other q_ij = 1; m = n = 3 by default, W* iid N(0, 1) (full
    rank), W0 = 0. L = max(q11, 1), mu = min(q11, 1), f* = 0. Rank-1 joint LoRA cannot reach f*;
    Bernoulli-LoRA satisfies GD-PL with lambda = r/3 for every p."""

    family = "lora-counterexample"

    PARAMS = (Param("q11", 1.0, math.exp(3), log=True, valid=(0.0, None), low_open=True, default=10.0,
                    doc="curvature of the (1, 1) entry; 1 elsewhere"),)
    shape = (3, 3)

    @classmethod
    def _fuzz_shape(cls, rng) -> dict:
        return dict(m=3, n=3, seed=int(rng.integers(0, 10_000)))        # the counter-example is 3 x 3

    def build(self, rng):
        self.q = np.ones((self.m, self.n))
        self.q[0, 0] = float(self.params["q11"])
        self.W_star = rng.standard_normal((self.m, self.n))
        self.W0 = np.zeros((self.m, self.n))
        self.f_star = 0.0
        self.L = float(self.q.max())
        self.mu = float(self.q.min())

    def host_arrays(self):
        return {"q": self.q, "W_star": self.W_star}

    def grad(self, W):
        return self.dev["q"] * (W - self.dev["W_star"])

    def f_gap(self, W):
        D = W - self.dev["W_star"]
        return 0.5 * self.bk.xp.sum(self.dev["q"] * D * D, axis=(-2, -1))

    def value(self, W):
        return self.f_gap(W)

    def f_gap_given_grad(self, W, grad):
        return 0.5 * frob_inner(W - self.dev["W_star"], grad, self.bk.xp)
