"""Matrix least squares with a prescribed spectrum (docs/THEORY.md 3(a))."""
from __future__ import annotations

import numpy as np

import math

from ..params import Param
from .base import Problem, frob_inner, register


@register
class LeastSquares(Problem):
    """f(W) = 1/(2N) ||X W - Y||^2, a finite sum of f_i = 1/2 ||W^T x_i - y_i||^2.

    Model: X = sqrt(N) U diag(sqrt(s)) V^T with U (N x m) orthonormal columns, V orthogonal and
    s evenly spaced in [L/cond, L], so Sigma_X = X^T X / N = V diag(s) V^T exactly;
    Y = X W0* + noise * E with W0* and E iid N(0, 1); W0 = 0.

    Constants: L = lambda_max(Sigma_X), mu = lambda_min(Sigma_X) (PL globally), W* = X^+ Y,
    f* = ||(I - X X^+) Y||^2 / (2N), L_i = ||x_i||^2, delta_inf = f* (f_i^inf = 0),
    L_tilde^2 = lambda_max(mean ||x_i||^2 x_i x_i^T), L_pm^2 = that minus Sigma_X^2.

    Parameters: ``n_samples`` N >= m (default 64), ``cond`` >= 1 (default 10), ``L`` > 0
    (default 10, the largest eigenvalue), ``noise`` >= 0 (default 0.5).
    """

    family = "least-squares"

    PARAMS = (Param("n_samples", lambda c: c.m, lambda c: 4 * c.m + 19, integer=True, valid=(lambda c: c.m, 10 ** 7),
                    default=64, doc="samples N >= m"),
              Param("cond", 1.0, 100.0, log=True, corners=(1.0,), valid=(1.0, 1e12), default=10.0,
                    doc="condition number of Sigma_X; 1 is the isotropic corner, Sigma_X = L I"),
              Param("L", math.exp(-1), math.exp(3), log=True, valid=(1e-100, 1e100), default=10.0,
                    doc="largest eigenvalue of Sigma_X"),
              Param("noise", 0.0, 1.0, valid=(0.0, None), default=0.5, doc="label noise (f* > 0 when N > m)"))

    @classmethod
    def fuzz_params(cls, rng, corner=False):
        """The declared parameters (cond = 1, Sigma_X = L I: f - f* = (L/2)||W - W*||^2, the isotropic
        corner, with probability 0.3); M = 2 or 4 clients with probability 0.4."""
        out = super().fuzz_params(rng, corner)
        m = out["m"]
        if rng.random() < 0.4:
            clients = int(rng.choice([2, 4]))
            out["n_samples"] = clients * max(1, -(-out["n_samples"] // clients))
            out["n_samples"] = max(out["n_samples"], clients * -(-m // clients))
            out["clients"] = clients
            out["split"] = str(rng.choice(["homogeneous", "heterogeneous"]))
        return out
    shape = (16, 12)
    finite_sum = True

    def build(self, rng):
        m, n, N = self.m, self.n, int(self.params["n_samples"])
        L, cond = float(self.params["L"]), float(self.params["cond"])
        s = np.linspace(L / cond, L, m)
        U, _ = np.linalg.qr(rng.standard_normal((N, m)))
        V, _ = np.linalg.qr(rng.standard_normal((m, m)))
        X = np.sqrt(N) * (U * np.sqrt(s)) @ V.T
        Y = X @ rng.standard_normal((m, n)) + self.params["noise"] * rng.standard_normal((N, n))
        self.X, self.Y, self.n_samples = X, Y, N
        self.Sigma = X.T @ X / N
        self.XtY = X.T @ Y / N
        self.W_star = np.linalg.lstsq(X, Y, rcond=None)[0]
        resid = X @ self.W_star - Y
        self.f_star = float(np.sum(resid**2) / (2 * N))
        self.L = float(s.max())
        self.mu = float(s.min())
        self.W0 = np.zeros((m, n))
        sq = np.sum(X**2, axis=1)
        self.L_i = sq
        self.L_max = float(sq.max())
        second = (X * sq[:, None]).T @ X / N
        self.L_tilde = float(np.sqrt(np.linalg.eigvalsh(second).max()))
        self.L_pm = float(np.sqrt(max(np.linalg.eigvalsh(second - self.Sigma @ self.Sigma).max(), 0.0)))
        self.delta_inf = self.f_star

    def host_arrays(self):
        return {"Sigma": self.Sigma, "neg_XtY": -self.XtY, "W_star": self.W_star, "X": self.X, "Y": self.Y}

    def grad(self, W):
        return self.bk.matmul_add(self.dev["Sigma"], W, self.dev["neg_XtY"])

    def f_gap(self, W):
        # f(W) - f* = 1/2 <D, Sigma_X D> exactly (X W* is the projection of Y): no cancellation.
        D = W - self.dev["W_star"]
        return 0.5 * self.bk.xp.sum(D * (self.dev["Sigma"] @ D), axis=(-2, -1))

    def value(self, W):
        return self.f_star + self.f_gap(W)

    def f_gap_given_grad(self, W, grad):
        # Sigma_X W* = X^T Y / N (X has full column rank), so f - f* = 1/2 <W - W*, grad f(W)> exactly
        return 0.5 * frob_inner(W - self.dev["W_star"], grad, self.bk.xp)

    def grad_and_gap(self, W):
        return self.grad_gap_diff(W)[:2]

    def grad_gap_diff(self, W):
        D = W - self.dev["W_star"]
        G = self.dev["Sigma"] @ D            # = Sigma_X W - X^T Y / N
        return G, 0.5 * frob_inner(D, G, self.bk.xp), D

    def minibatch_grad(self, W, idx):
        mid, (Xb, Yb) = self.gather_rows(idx, "X", "Y")
        G = Xb.mT @ (Xb @ W[:, None] - Yb) / idx.shape[-1]
        return self.bk.xp.reshape(G, (W.shape[0],) + mid + (self.m, self.n))

    def heterogeneity_key(self):
        return self.Y[:, 0]

    def client_constants(self):
        """Exact (docs/THEORY.md 3(h)): L_i = lambda_max(Sigma_i), L_tilde^2 = lambda_max(mean Sigma_i^2),
        f_i^inf = ||(I - X_i X_i^+) Y_i||^2/(2 N_i), delta_inf = f* - mean f_i^inf."""
        sig, finf = [], []
        for sh in self.shards:
            Xi, Yi = self.X[sh], self.Y[sh]
            sig.append(Xi.T @ Xi / len(sh))
            r = Xi @ np.linalg.lstsq(Xi, Yi, rcond=None)[0] - Yi
            finf.append(float(np.sum(r ** 2) / (2 * len(sh))))
        self.client_L = np.array([np.linalg.eigvalsh(s)[-1] for s in sig])
        self.client_L_max = float(self.client_L.max())
        self.client_L_tilde = float(np.sqrt(np.linalg.eigvalsh(np.mean([s @ s for s in sig], axis=0))[-1]))
        self.client_delta_inf = max(self.f_star - float(np.mean(finf)), 0.0)
