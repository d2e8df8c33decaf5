"""Full gradients, SGD under the ABC assumption, and subgradients (docs/THEORY.md 4.1, 4.2, 4.7)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError, check_range
from ..params import Context, Param
from .base import Estimator, evolve, register


@register
class FullGradient(Estimator):
    """G^t = grad f(W^t) (GD-NC, GD-PL)."""

    name = "gd"
    exact = True
    graphable = True

    def __init__(self):
        super().__init__()

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        return (problem.grad(W) if grad is None else grad), evolve(state, epochs=state.epochs + 1.0)

    def constants(self, problem):
        return dict(A=0.0, B=1.0, C=0.0)


@register
class Subgradient(FullGradient):
    """g^t in the subdifferential of f at W^t, a function of W^t (docs/THEORY.md 4.7)."""

    name = "subgradient"
    smooth = False
    graphable = False
    #: subgradients g of a non-smooth f; the Polyak stepsize (which needs f* and ||g||) is its rule
    CAPABILITIES = frozenset({"subgradient", "polyak"})
    PARAMS = (Param("kappa", valid=(0.0, None), low_open=True, optional=True, fuzz=False,
                    doc="Polyak stepsize factor kappa in gamma_t = kappa (f - f*)/||g||^2 (None: the rule's default)"),)

    def __init__(self, kappa=None):
        Estimator.__init__(self, kappa=kappa)

    def resolve(self, problem):
        if not problem.smooth and problem.L_0 is None:
            raise InputError("problem", f"{problem.describe()} gives no subgradient bound L_0")
        return self

    def constants(self, problem):
        return {"kappa": self.params["kappa"]}


NOISE_MODELS = ("auto", "minibatch", "additive")


@register
class SGD(Estimator):
    """Stochastic gradients under the ABC assumption (docs/THEORY.md 4.2).

    Noise models (``noise``):

    * ``"additive"`` (N1): g = grad f + Z, Z_ij ~ N(0, noise_std^2): A = 0, B = 1, C = s^2 m n.
    * ``"minibatch"``: uniform b-minibatch of a finite sum, ``replacement`` True (N2, nu = 1/b)
      or False (N3, nu = (N-b)/(b(N-1))): A = nu L_max, B = 1 - nu, C = 2 nu L_max delta_inf.
    * ``"auto"`` (default): minibatch for finite sums, additive otherwise.

    Parameters: ``batch`` b in [1, N] (default 1), ``replacement`` (default False),
    ``noise_std`` s >= 0 (default 0.1).
    """

    name = "sgd"
    vector_params = {"noise_std": 3}
    PARAMS = (Param("noise", choices=NOISE_MODELS, fuzz=False, doc="noise model: auto, minibatch or additive"),
              Param("batch", 1, 4, integer=True, valid=(1, 10 ** 7), doc="minibatch size b (<= N without replacement)"),
              Param("replacement", choices=(True, False), doc="sample with replacement (N2) or without (N3)"),
              Param("noise_std", math.exp(-3), 1.0, log=True, corners=(1e-3,), corner_mass=0.15, valid=(0.0, 1e100),
                    doc="additive noise per entry (N1)"))

    @classmethod
    def fuzz_params(cls, rng, problem, corner=False):
        """Minibatches (70%) where the problem is a finite sum, else additive noise (the corner:
        additive noise, where SGD-PL is attained on the isotropic quadratic, docs/THEORY.md 5.2)."""
        ctx = Context(problem.m, problem.n, problem.n_samples)
        decl = {p.name: p for p in cls.PARAMS}
        if problem.is_finite_sum and not corner and rng.random() < 0.7:
            return dict(noise="minibatch", batch=decl["batch"].draw(rng, ctx),
                        replacement=decl["replacement"].draw(rng, ctx))
        return dict(noise="additive", noise_std=decl["noise_std"].draw(rng, ctx))

    def capabilities(self):
        return frozenset({"additive-noise"} if self._params["noise"] == "additive" else {"minibatch"})

    def __init__(self, noise="auto", batch=1, replacement=False, noise_std=0.1):
        super().__init__(noise=noise, batch=batch, replacement=replacement, noise_std=noise_std)

    def resolve(self, problem):
        p = self.params
        noise = p["noise"]
        if noise == "auto":
            noise = "minibatch" if problem.is_finite_sum else "additive"
        if noise == "minibatch":
            if not problem.is_finite_sum:
                raise InputError("noise", f"minibatch sampling needs a finite sum; {problem.describe()} is not "
                                 "one (use noise='additive')")
            if not p["replacement"]:
                check_range("batch", p["batch"], 1, problem.n_samples, integer=True)
        return self._with(noise=noise)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        p = self._params
        if p["noise"] == "additive":
            g = problem.grad(W) if grad is None else grad
            return (g + p["noise_std"] * streams.normal("noise", t, W.shape[1:]),
                    evolve(state, epochs=state.epochs + 1.0))
        idx = sample_indices(streams, t, problem.n_samples, p["batch"], p["replacement"])
        return problem.minibatch_grad(W, idx), evolve(state, epochs=state.epochs + p["batch"] / problem.n_samples)

    def constants(self, problem):
        p = self.params
        if p["noise"] == "additive":
            s2 = p["noise_std"] ** 2
            return dict(A=0.0, B=1.0, C=s2 * problem.m * problem.n, sigma2=s2 * problem.m * problem.n,
                        noise_std=p["noise_std"], noise_model="N1")
        b, N = p["batch"], problem.n_samples
        nu = finite_population_nu(N, b, p["replacement"])
        Lm, di = problem.L_max, problem.delta_inf          # None on a user's finite sum that does not declare them
        return dict(A=None if Lm is None else nu * Lm, B=1.0 - nu,
                    C=None if Lm is None or di is None else 2 * nu * Lm * di,
                    nu=nu, b=b, noise_model="N2" if p["replacement"] else "N3")


def sample_indices(streams, t: int, N: int, b: int, replacement: bool):
    """(S, b) uniform minibatch indices per seed from the sampling stream at step t."""
    xp = streams.backend.xp
    if replacement:
        u = streams.uniform("sampling", t, (b,))
        return xp.clip(xp.astype(xp.floor(u * N), xp.int64), 0, N - 1)
    # without replacement: the b smallest of N uniforms (a uniform b-subset), found by selection
    # in O(N) rather than by sorting (the order within the minibatch does not matter)
    if streams.backend.name == "torch":
        u = streams.uniform("sampling", t, (N,))
        return xp.topk(u, b, dim=-1, largest=False).indices
    # numpy: the uniforms are the words' top 53 bits times 2^-53, an exact increasing map, so the
    # b smallest words' top bits select the same subset without forming N floats per seed
    top = streams.bits("sampling", t, N).view(np.uint64)
    top >>= np.uint64(11)
    return np.argpartition(top, b - 1, axis=-1)[:, :b]


def finite_population_nu(N: int, b: int, replacement: bool) -> float:
    """nu = 1/b with replacement, (N - b)/(b (N - 1)) without (docs/THEORY.md 4.2, N2/N3)."""
    if replacement:
        return 1.0 / b
    return (N - b) / (b * (N - 1)) if N > 1 else 0.0
