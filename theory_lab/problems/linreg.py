"""Vector regression with a non-convex regulariser, the paper's experiment (docs/THEORY.md 3(d))."""
from __future__ import annotations

import numpy as np

import math

from ..errors import InputError
from ..params import Param
from .base import Problem, register
from .regularisers import NonConvex

DATA = ("gaussian", "make_regression")
INITS = ("gaussian", "zeros", "pretrained")


def _lam_max_psd(M: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(M)[-1])


@register
class LinregNoncvx(Problem):
    """f(W) = 1/(2N) ||A x - b||^2 + lam_r sum_j phi(x_j), phi(u) = u^2/(1+u^2), x = W.reshape(-1).

    Data models (``data``):

    * ``"gaussian"`` (default): A iid N(0,1) (N x mn), b = A x0 + ``noise`` * e.
    * ``"make_regression"``: scikit-learn's generator with the paper's fine-tuning settings
      (docs/EXPERIMENTS.md E1, scaled to d = mn: n_informative d/2, effective_rank max(1, d/128),
      noise 50, bias 10, tail_strength 0.9, random_state 84), then A and b each rescaled as a
      whole to mean 1, standard deviation 2. Needs ``pip install 'theory-lab[paper]'``.

    ``lam_r``: a number >= 0, or "lambda_max" (default) for lambda_max(A^T A / N) as in the paper.
    ``init``: "gaussian" (N(0,1), default), "zeros", or "pretrained" (GD at step 1/L_pre on the
    paper's pre-training set of ``pretrain_samples`` rows, from N(0, I) with seed 42, at most
    10,000 steps, stopping when ||grad||^2 < 1e-8).

    Constants: L = lambda_max(A^T A/N) + 2 lam_r; f_lb = 0 (f >= 0); PL (mu = lambda_min(A^T A/N)
    - lam_r/2, f* computed by GD) only when lambda_min(A^T A/N) > lam_r/2; L_i = ||a_i||^2 + 2 lam_r;
    L_pm^2 = lambda_max(mean ||a_i||^2 a_i a_i^T - (A^T A/N)^2); delta_inf <= the smallest f found.
    """

    family = "linreg-noncvx"

    PARAMS = (Param("n_samples", lambda c: 3 * c.m * c.n, lambda c: 8 * c.m * c.n + 39, integer=True,
                    valid=(1, 10 ** 7), default=200, doc="samples N"),
              Param("lam_r", math.exp(-4), 1.0, log=True, valid=(0.0, None), also=("lambda_max",),
                    default="lambda_max", doc="regulariser weight, or lambda_max of A^T A / N"),
              Param("noise", 0.0, 1.0, valid=(0.0, None), default=1.0, doc="label noise"),
              Param("data", choices=DATA, fuzz=False, default="gaussian", doc="design: gaussian or make_regression"),
              Param("init", choices=INITS, fuzz=False, default="gaussian", doc="W0: gaussian, zeros or pretrained"),
              Param("pretrain_samples", valid=(1, 10 ** 7), integer=True, fuzz=False, default=90_000,
                    doc="samples of the pretraining task (init = pretrained)"))
    fuzz_shape = (5, 5)
    finite_sum = True

    def host_bytes(self):
        d, N = self.m * self.n, int(self.params["n_samples"])
        return 8 * (2 * N * d + 4 * d * d)

    # ------------------------------------------------------------------ data
    def build(self, rng):
        d, N = self.m * self.n, int(self.params["n_samples"])
        if self.params["data"] == "gaussian":
            A = rng.standard_normal((N, d))
            b = A @ rng.standard_normal(d) + self.params["noise"] * rng.standard_normal(N)
        else:
            A, b = _make_regression(N, d, informative=max(1, d // 2), rank=max(1, d // 128),
                                    noise=50.0, bias=10.0, tail=0.9, seed=84)
            A = (A - A.mean()) / A.std() * 2.0 + 1.0
            b = (b - b.mean()) / b.std() * 2.0 + 1.0
        self.A, self.b, self.n_samples = A, b, N
        self.gram = A.T @ A / N
        self.Atb = A.T @ b / N
        self.b_sq = float(b @ b / (2 * N))
        eig = np.linalg.eigvalsh(self.gram)
        lam_max, lam_min = float(eig[-1]), float(eig[0])
        lam_r = lam_max if self.params["lam_r"] == "lambda_max" else float(self.params["lam_r"])
        self.lam_r = lam_r
        self.reg = NonConvex(lam_r)
        self.L = lam_max + self.reg.L
        self.f_lb = 0.0
        self.W0 = self._initial_point(rng)
        sq = np.sum(A * A, axis=1)
        self.L_i = sq + 2 * lam_r
        self.L_max = float(self.L_i.max())
        second = (A * sq[:, None]).T @ A / N
        self.L_pm = float(np.sqrt(max(_lam_max_psd(second - self.gram @ self.gram), 0.0)))
        self.L_tilde = float(np.sqrt(_lam_max_psd(second))) + 2 * lam_r
        self.x_star = None
        if lam_min > lam_r / 2:
            self.mu = lam_min - lam_r / 2
            self.x_star = self._newton(self._minimise(tol=1e-24)[0])
            self.W_star = self.x_star.reshape(self.m, self.n)
            self.g_star = self._grad_vec(self.x_star)      # ~1e-16: kept in the gap's first-order term
            self.f_star = self._f_vec(self.x_star)
            self.f_lb = self.f_star
        self.delta_inf = self._minimise(max_steps=300)[1] if self.f_star is None else self.f_star

    def _initial_point(self, rng) -> np.ndarray:
        init, shape = self.params["init"], (self.m, self.n)
        if init == "zeros":
            return np.zeros(shape)
        if init == "gaussian":
            return rng.standard_normal(shape)
        d, Np = self.m * self.n, int(self.params["pretrain_samples"])
        A, b = _make_regression(Np, d, informative=d, rank=max(1, d // 64), noise=20.0, bias=0.0,
                                tail=0.8, seed=42)
        A = (A - A.mean(axis=0)) / np.where(A.std(axis=0) > 0, A.std(axis=0), 1.0)
        b = (b - b.mean()) / b.std()
        gram, Atb = A.T @ A / Np, A.T @ b / Np
        lam = float(np.linalg.eigvalsh(gram)[-1])
        L_pre = 3.0 * lam
        reg = NonConvex(lam)
        x = np.random.default_rng(42).standard_normal(d)
        for _ in range(10_000):
            g = gram @ x - Atb + reg.grad(x)
            if g @ g < 1e-8:
                break
            x = x - g / L_pre
        return x.reshape(shape)

    def _grad_vec(self, x):
        return self.gram @ x - self.Atb + self.reg.grad(x)

    def _f_vec(self, x):
        """f in residual form (no cancellation against ||b||^2)."""
        r = self.A @ x - self.b
        return float(r @ r / (2 * self.n_samples) + self.reg.value(x, np))

    def _minimise(self, tol=0.0, max_steps=100_000) -> tuple[np.ndarray, float]:
        """(last iterate, smallest f found) of GD at step 1/L from W0 (f* when strongly convex)."""
        x = self.W0.reshape(-1).copy()
        best = self._f_vec(x)
        for _ in range(max_steps):
            g = self._grad_vec(x)
            if g @ g <= tol:
                break
            x = x - g / self.L
            best = min(best, self._f_vec(x))
        return x, float(best)

    def _newton(self, x, steps: int = 5) -> np.ndarray:
        """Polish a minimiser with Newton steps (Hessian Gram + lam_r diag rho''; positive definite
        under PL here), so the gradient there is at rounding level."""
        for _ in range(steps):
            rho2 = 2.0 * (1.0 - 3.0 * x * x) / (1.0 + x * x) ** 3
            H = self.gram + np.diag(self.lam_r * rho2)
            try:
                x = x - np.linalg.solve(H, self._grad_vec(x))
            except np.linalg.LinAlgError:
                break
        return x

    # ------------------------------------------------------------------ device
    def host_arrays(self):
        out = {"gram": self.gram, "Atb": self.Atb, "A": self.A, "b": self.b}
        if self.x_star is not None:
            out.update(x_star=self.x_star, g_star=self.g_star, xsG=self.x_star @ self.gram)
        return out

    def _flat(self, W):
        return self.bk.xp.reshape(W, (W.shape[0], self.m * self.n))

    def value(self, W):
        if self.x_star is not None:
            return self.f_star + self.f_gap(W)
        x = self._flat(W)
        return self._value(x, x @ self.dev["gram"])

    def _value(self, x, xG):
        """f in expanded form from xG = x G: 1/2 <x, G x> - <x, A^T b/N> + ||b||^2/(2N) + r(x)."""
        xp = self.bk.xp
        return 0.5 * xp.sum(x * xG, axis=-1) - x @ self.dev["Atb"] + self.b_sq + self.reg.value(x, xp)

    def grad(self, W):
        xp = self.bk.xp
        x = self._flat(W)
        g = x @ self.dev["gram"] - self.dev["Atb"] + self.reg.grad(x)
        return xp.reshape(g, W.shape)

    def _gap(self, x, xG):
        """f(x) - f* = <g*, d> + 1/2 <d, G d> + Bregman of the regulariser, d = x - x* (no cancellation:
        every term is formed from d), given xG = x G."""
        xp = self.bk.xp
        d = x - self.dev["x_star"]
        dG = xG - self.dev["xsG"]
        return d @ self.dev["g_star"] + 0.5 * xp.sum(d * dG, axis=-1) + self.reg.bregman(x, self.dev["x_star"], xp)

    def gap_resolution(self, eps=2.220446049250313e-16):
        """0 under PL (the gap is formed from x - x*); otherwise value is evaluated in expanded form
        against ||b||^2/(2N): about 64 eps (b_sq + f_lb)."""
        if self.x_star is not None:
            return self._iterate_floor(eps)
        return 64.0 * eps * (self.b_sq + abs(self.f_lb))

    def f_gap(self, W):
        if self.x_star is None:
            return self.value(W) - self.f_lb
        x = self._flat(W)
        return self._gap(x, x @ self.dev["gram"])

    def grad_and_gap(self, W):
        """One pass over the Gram matrix for both."""
        xp = self.bk.xp
        x = self._flat(W)
        xG = x @ self.dev["gram"]
        gap = self._gap(x, xG) if self.x_star is not None else self._value(x, xG) - self.f_lb
        return xp.reshape(xG - self.dev["Atb"] + self.reg.grad(x), W.shape), gap

    def minibatch_grad(self, W, idx):
        xp = self.bk.xp
        if self.bk.name == "numpy":
            return self._minibatch_grad_np(W, idx)
        mid, (Ab, bb) = self.gather_rows(idx, "A", "b")
        x = self._flat(W)
        # two batched GEMVs (no S x b x mn temporaries): resid = A_I x - b_I, g = A_I^T resid / b
        resid = (Ab @ x[:, None, :, None])[..., 0] - bb                          # (S, K, b)
        g = (resid[:, :, None, :] @ Ab)[:, :, 0, :] / idx.shape[-1] + self.reg.grad(x)[:, None, :]
        return xp.reshape(g, (W.shape[0],) + mid + (self.m, self.n))

    def _minibatch_grad_np(self, W, idx):
        """numpy: one (seed, sample set) at a time, so its b gathered rows (b x mn, a few MB) are
        still in cache for the second GEMV; the batched form writes all S b rows to memory and
        reads them twice (at the paper's size 65 MB per step, 40% of an SGD step)."""
        A, bvec = self.dev["A"], self.dev["b"]
        S, mid, b = idx.shape[0], tuple(idx.shape[1:-1]), idx.shape[-1]
        x = self._flat(W)
        sets = idx.reshape(S, -1, b)
        g = np.empty((S, sets.shape[1], x.shape[1]))
        for s in range(S):
            for k in range(sets.shape[1]):
                Ab = A.take(sets[s, k], axis=0)
                resid = Ab @ x[s] - bvec.take(sets[s, k])
                np.matmul(resid, Ab, out=g[s, k])
        g /= b
        g += self.reg.grad(x)[:, None, :]
        return g.reshape((S,) + mid + (self.m, self.n))

    def heterogeneity_key(self):
        return self.b


def _make_regression(N, d, *, informative, rank, noise, bias, tail, seed):
    try:
        from sklearn.datasets import make_regression
    except ImportError:
        raise InputError("data", "make_regression needs scikit-learn: pip install 'theory-lab[paper]'") from None
    A, b = make_regression(n_samples=N, n_features=d, n_informative=informative, noise=noise, bias=bias,
                           tail_strength=tail, effective_rank=rank, random_state=seed)
    return A, b
