"""QGD, MARINA and EF21 (docs/THEORY.md 4.3, 4.4, 4.6): M clients as a batch axis, compressed messages.

Without clients (M = 1) the whole objective is the single client. Bits are counted per client and
step: a full-precision message of d = m n floats costs 32 d bits.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from ..compressors import COMPRESSORS, make_compressor
from ..errors import InputError
from ..params import Context, Param
from .base import Estimator, evolve, pick, register


def client_grads(problem, W, grad=None):
    """(S, M, m, n): per-client gradients, or the full gradient as the single client."""
    if problem.clients > 1:
        return problem.client_grads(W)
    return (problem.grad(W) if grad is None else grad)[:, None]


def client_constants(problem) -> dict:
    if problem.clients > 1:
        return dict(M=problem.clients, cL_max=problem.client_L_max, cL_tilde=problem.client_L_tilde,
                    c_delta_inf=problem.client_delta_inf)
    return dict(M=1, cL_max=problem.L, cL_tilde=problem.L, c_delta_inf=0.0)


#: every entry kept (k = d): no compression, where the compressed methods' bounds are attained
_ALL = (lambda ctx: ctx.d,)


class _Compressed(Estimator):
    kind = "unbiased"
    uses_clients = True
    PARAMS = (Param("compressor", choices=lambda: tuple(COMPRESSORS), fuzz=False,
                    doc="the compressor Q (a registered one, read when checked)"),
              Param("k", 1, lambda ctx: ctx.d, integer=True, corners=_ALL, valid=(1, lambda ctx: ctx.d),
                    optional=True, doc="entries kept by randk / topk, 1 <= k <= m n"),
              Param("s", 1, 8, integer=True, corners=(1024,), corner_mass=0.15, valid=(1, 2 ** 20), optional=True,
                    doc="dithering levels"))

    @classmethod
    def fuzz_params(cls, rng, problem, corner=False):
        """randk (60%) or dithering for the unbiased kind, topk for the contractive one (the corner:
        k = d, no compression)."""
        ctx = Context(problem.m, problem.n, problem.n_samples)
        _, k, s = _Compressed.PARAMS
        if cls.kind == "contractive":
            return dict(compressor="topk", k=k.draw(rng, ctx, corner))
        if corner or rng.random() < 0.6:
            return dict(compressor="randk", k=k.draw(rng, ctx, corner))
        return dict(compressor="dither", s=s.draw(rng, ctx))

    def __init__(self, compressor="randk", k=None, s=None, **extra):
        super().__init__(compressor=compressor, k=k, s=s, **extra)
        p = self._params
        self.comp = make_compressor(p["compressor"], k=p["k"], s=p["s"])
        if self.kind == "unbiased" and not self.comp.unbiased:
            raise InputError("compressor", f"{self.name} needs an unbiased compressor (randk, dither, identity)")
        if self.kind == "contractive" and not self.comp.contractive:
            raise InputError("compressor", f"{self.name} needs a contractive compressor (topk, identity)")


@register
class QGD(_Compressed):
    """G^t = (1/M) sum_i Q_i(grad f_i(W^t)), independent unbiased Q_i (SGD with A, B, C of 4.3)."""

    name = "qgd"

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        G = streams.backend.xp.mean(self.comp.compress(client_grads(problem, W, grad), streams, t), axis=1)
        return G, evolve(state, epochs=state.epochs + 1.0, bits=state.bits + self.comp.bits(problem.m * problem.n))

    def constants(self, problem):
        om = self.comp.omega(problem.m * problem.n)
        cc = client_constants(problem)
        if cc["M"] == 1:
            return dict(omega=om, A=0.0, B=1.0 + om, C=0.0, **cc)
        return dict(omega=om, A=om * cc["cL_max"] / cc["M"], B=1.0,
                    C=2 * om * cc["cL_max"] * cc["c_delta_inf"] / cc["M"], **cc)


@register
class MARINA(_Compressed):
    """G^0 = grad f(W^0); with probability q (one coin per step) G^t = grad f(W^t), else
    G^t = G^{t-1} + (1/M) sum_i Q_i(grad f_i(W^t) - grad f_i(W^{t-1})). V = omega L_tilde^2 / M.
    Default q = 1/(1 + omega)."""

    name = "marina"
    tracks_error = True

    PARAMS = _Compressed.PARAMS + (Param("q", 0.05, 1.0, corners=(1.0,), valid=(0.0, 1.0), low_open=True, optional=True,
                                         doc="switch probability in (0, 1] (None: 1/(1 + omega)); q = 1 is exact GD"),)

    def __init__(self, compressor="randk", k=None, s=None, q=None):
        super().__init__(compressor, k, s, q=q)

    @classmethod
    def fuzz_params(cls, rng, problem, corner=False):
        out = super().fuzz_params(rng, problem, corner)
        if corner or rng.random() < 0.6:           # else the default q = 1/(1 + omega)
            out["q"] = cls.PARAMS[-1].draw(rng, Context(problem.m, problem.n, problem.n_samples), corner)
        return out

    def resolve(self, problem):
        super().resolve(problem)
        q = self._params["q"]
        return self._with(q=1.0 / (1.0 + self.comp.omega(problem.m * problem.n)) if q is None else q)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        xp = streams.backend.xp
        d = problem.m * problem.n
        grad = problem.grad(W) if grad is None else grad
        if t == 0:
            return grad, evolve(state, G=grad, epochs=state.epochs + 1.0, bits=state.bits + 32.0 * d)
        switch = streams.uniform("switch", t) < self._params["q"]
        diff = client_grads(problem, W, grad) - client_grads(problem, W_prev)
        step = state.G + xp.mean(self.comp.compress(diff, streams, t), axis=1)
        G = xp.where(switch[:, None, None], grad, step)
        return G, evolve(state, G=G, epochs=state.epochs + pick(xp, switch, 1.0, 2.0),
                         bits=state.bits + pick(xp, switch, 32.0 * d, self.comp.bits(d)))

    def constants(self, problem):
        om = self.comp.omega(problem.m * problem.n)
        cc = client_constants(problem)
        return dict(omega=om, q=self.params["q"], V=om * cc["cL_tilde"] ** 2 / cc["M"], e0=0.0, **cc)


@register
class EF21(_Compressed):
    """g_i^0 = C_i(grad f_i(W^0)); g_i^{t} = g_i^{t-1} + C_i(grad f_i(W^t) - g_i^{t-1}); G^t = mean_i g_i^t.
    Contractive C in B(alpha); theta = 1 - sqrt(1 - alpha), beta = (1 - alpha)/(1 - sqrt(1 - alpha)).
    ``error`` is the client-averaged (1/M) sum_i ||g_i^t - grad f_i(W^t)||^2 >= e_t."""

    name = "ef21"
    tracks_error = True
    kind = "contractive"

    def __init__(self, compressor="topk", k=None, s=None):
        super().__init__(compressor, k, s)

    def init(self, problem, W, streams):
        return SimpleNamespace(G=None, g=None, err=None, epochs=0.0, bits=0.0)

    def estimate(self, problem, state, W, W_prev, t, streams, grad=None):
        xp = streams.backend.xp
        cg = client_grads(problem, W, grad)
        g = self.comp.compress(cg, streams, t) if t == 0 else state.g + self.comp.compress(cg - state.g, streams, t)
        D = g - cg
        G = xp.mean(g, axis=1)
        return G, evolve(state, G=G, g=g, err=xp.mean(xp.sum(D * D, axis=(-2, -1)), axis=1),
                         epochs=state.epochs + 1.0, bits=state.bits + self.comp.bits(problem.m * problem.n))

    def error(self, problem, state, W, grad):
        return state.err

    def constants(self, problem):
        import numpy as np

        from ..backend import get_backend
        from ..backend.random import Streams

        d = problem.m * problem.n
        al = self.comp.alpha(d)
        theta = 1.0 - math.sqrt(1.0 - al)
        beta = (1.0 - al) / theta if al < 1 else 0.0
        # G^0 exactly (deterministic compressors: TopK, identity); the run plan computes the
        # constants once per run
        p = problem.bind(get_backend("numpy"))
        cg = client_grads(p, p.W0[None])
        g0 = self.comp.compress(cg, Streams(p.bk, 0, np.arange(1)), 0)
        G0 = float(np.mean(np.sum((g0 - cg) ** 2, axis=(-2, -1))))
        return dict(alpha=al, theta=theta, beta=beta, G0=G0, **client_constants(problem))
