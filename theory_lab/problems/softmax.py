"""Multinomial (softmax) logistic regression (docs/THEORY.md 3(e))."""
from __future__ import annotations

import numpy as np

import math

from ..errors import InputError, check_range
from ..params import Param
from .base import Problem, register
from .regularisers import NonConvex, Ridge

REGS = ("l2", "noncvx")


@register
class SoftmaxRegression(Problem):
    """f(W) = mean_i [logsumexp(z_i) - z_{i, y_i}] + reg(W), z_i = W^T a_i, W in R^{m x n} (n classes).

    Model: a_i iid N(0, I_m / m) * ``feature_scale``, a planted W_true iid N(0, ``signal``^2 m), labels
    drawn from softmax(W_true^T a_i); W0 = 0. ``reg``: "l2" ((nu/2)||W||^2: mu = nu, strongly convex,
    f* by GD to ||grad f|| <= 1e-12) or "noncvx" (lam_r sum phi(W_jk), phi(u) = u^2/(1+u^2): no PL,
    f_lb = 0).

    Constants: L = lambda_max(Sigma_A)/2 + (nu or 2 lam_r); L_i = ||a_i||^2/2 + (nu or 2 lam_r);
    single-sample variance sigma2 = (2/N) sum ||a_i||^2; L_pm^2 <= lambda_max(Sigma_2)/4;
    L_tilde <= sqrt(lambda_max(Sigma_2))/2 + (nu or 2 lam_r), Sigma_2 = mean ||a_i||^2 a_i a_i^T.
    """

    family = "softmax-regression"

    PARAMS = (Param("n_samples", 40, 119, integer=True, valid=(1, 10 ** 7), default=300, doc="samples N"),
              Param("reg", choices=REGS, fuzz=False, default="l2", doc="l2 (strongly convex) or noncvx"),
              Param("nu", math.exp(-3), 1.0, log=True, valid=(0.0, None), default=0.1, doc="l2 weight (> 0 with l2)"),
              Param("lam_r", valid=(0.0, None), default=0.1, fuzz=False, doc="non-convex regulariser weight"),
              Param("signal", valid=(0.0, None), default=1.0, fuzz=False, doc="scale of the planted W_true"),
              Param("feature_scale", valid=(0.0, None), low_open=True, default=1.0, fuzz=False,
                    doc="scale of the features a_i"))
    fuzz_shape = (8, 12)
    shape = (8, 5)
    finite_sum = True

    def validate(self):
        super().validate()
        p = self.params
        if p["reg"] == "l2":
            check_range("nu", p["nu"], 0, None, low_open=True)
        if self.n < 2:
            raise InputError("n", "softmax regression needs n >= 2 classes")

    def build(self, rng):
        m, n, N = self.m, self.n, int(self.params["n_samples"])
        A = rng.standard_normal((N, m)) * self.params["feature_scale"] / np.sqrt(m)
        W_true = self.params["signal"] * np.sqrt(m) * rng.standard_normal((m, n))
        z = A @ W_true
        prob = np.exp(z - z.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        y = np.array([rng.choice(n, p=pr) for pr in prob])
        self.A, self.y, self.n_samples = A, y, N
        self.Y1 = np.eye(n)[y]
        self.l2 = self.params["reg"] == "l2"
        self.nu = float(self.params["nu"]) if self.l2 else 0.0
        self.lam_r = 0.0 if self.l2 else float(self.params["lam_r"])
        self.reg = Ridge(self.nu) if self.l2 else NonConvex(self.lam_r)
        reg_L = self.reg.L
        SA = A.T @ A / N
        sq = np.sum(A * A, axis=1)
        S2 = (A * sq[:, None]).T @ A / N
        self.L = 0.5 * float(np.linalg.eigvalsh(SA)[-1]) + reg_L
        self.L_i = 0.5 * sq + reg_L
        self.L_max = float(self.L_i.max())
        lam2 = float(np.linalg.eigvalsh(S2)[-1])
        self.L_pm = 0.5 * np.sqrt(lam2)
        self.L_tilde = 0.5 * np.sqrt(lam2) + reg_L
        self.sigma2 = 2.0 * float(sq.mean())
        self.W0 = np.zeros((m, n))
        self.f_lb = 0.0
        if self.l2:
            self.mu = self.nu
            self.W_star, self.f_star = self._minimise()
            self.f_lb = self.f_star
            self.delta_inf = self.f_star          # f_i >= 0, so delta_inf <= f*
        else:
            self.delta_inf = self.f_value_np(self.W0)

    # host helpers (float64) for the optimum
    def f_value_np(self, W):
        z = self.A @ W
        zmax = z.max(1, keepdims=True)
        lse = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(1)))
        ce = float(np.mean(lse - z[np.arange(len(z)), self.y]))
        return ce + float(self.reg.value(W, np, axis=(-2, -1)))

    def _grad_np(self, W):
        z = self.A @ W
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return self.A.T @ (p - self.Y1) / len(z) + self.reg.grad(W)

    def _minimise(self):
        W = self.W0.copy()
        for _ in range(200_000):
            g = self._grad_np(W)
            if np.sum(g * g) <= 1e-24:
                break
            W = W - g / self.L
        return W, self.f_value_np(W)

    def heterogeneity_key(self):
        return self.y

    # device
    def host_arrays(self):
        return {"A": self.A, "Y1": self.Y1}

    def value(self, W):
        xp = self.bk.xp
        z = self.dev["A"] @ W                                   # (S, N, n)
        zmax = xp.max(z, axis=-1, keepdims=True)
        lse = zmax[..., 0] + xp.log(xp.sum(xp.exp(z - zmax), axis=-1))
        ce = xp.mean(lse - xp.sum(z * self.dev["Y1"], axis=-1), axis=-1)
        return ce + self.reg.value(W, xp, axis=(-2, -1))

    def _softmax(self, z):
        xp = self.bk.xp
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def grad(self, W):
        A = self.dev["A"]
        return A.T @ (self._softmax(A @ W) - self.dev["Y1"]) / self.n_samples + self.reg.grad(W)

    def minibatch_grad(self, W, idx):
        mid, (Ab, Yb) = self.gather_rows(idx, "A", "Y1")
        G = Ab.mT @ (self._softmax(Ab @ W[:, None]) - Yb) / idx.shape[-1] + self.reg.grad(W)[:, None]
        return self.bk.xp.reshape(G, (W.shape[0],) + mid + (self.m, self.n))
