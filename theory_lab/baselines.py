"""LoRA baselines that train factors rather than take projected steps (docs/THEORY.md 3(g)).

* ``lora`` (joint LoRA): W = W0 + B A with B^0 = 0, A^0 ~ N(0, s^2) (``init_scale`` s), simultaneous
  GD on both factors, B <- B - gamma grad f(W) A^T, A <- A - gamma B^T grad f(W). The LoRA scale
  alpha/r is folded into gamma. Not L-smooth in (B, A): whether it diverges depends on s.
* ``cola`` (Chain of LoRA): the same joint training restarted every ``link_steps`` steps: merge B A
  into W, re-zero B, resample A (one chain link per restart).

``asymm-lora`` (one random factor frozen for the whole run, the other trained) is a projected step
with a sketch drawn once; it lives in :mod:`theory_lab.methods`.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np


class JointFactors(NamedTuple):
    """Per-run state of joint LoRA / CoLA for all seeds: W = base + B A, B (S, m, r), A (S, r, n).
    A value: ``step`` returns (W, new state)."""

    base: Any
    B: Any
    A: Any
    init_scale: float

    @classmethod
    def start(cls, W, rank: int, init_scale: float, streams) -> "JointFactors":
        S, m, n = W.shape
        return cls(W, streams.backend.zeros((S, m, rank)), init_scale * streams.normal("init", 0, (rank, n)),
                   init_scale)

    def step(self, W, G, gamma, t: int, streams, link_steps: int | None = None):
        base, B, A = self.base, self.B, self.A
        if link_steps and t > 0 and t % link_steps == 0:      # a new chain link
            base, B = W, B * 0.0
            A = self.init_scale * streams.normal("init", t, tuple(A.shape[1:]))
        B_new = B - gamma * (G @ A.mT)
        A_new = A - gamma * (B.mT @ G)
        return base + B_new @ A_new, JointFactors(base, B_new, A_new, self.init_scale)


def default_stepsize(problem, method) -> float:
    """The ``"theory"`` stepsize of lora / cola (no theorem covers them): the inverse of the
    curvature of the factor objective g(B, A) = f(W0 + B A) at the start of a link,

        gamma = 1 / (L ||A0||_2^2 + ||grad f(W0)||_2),   ||A0||_2^2 ~ s^2 (sqrt(n) + sqrt(r))^2,

    where L ||A0||^2 bounds the curvature along B (B is 0 at a link's start) and the spectral
    norm of the gradient bounds the cross term 2 <grad f, dB dA>. With B^0 = 0 this stays below
    2/curvature as the factors grow (measured: lora and cola converge with it on every smooth
    family's defaults, while 1/L diverges), and ``factor`` scales it like any theory stepsize."""
    s, r, n = method.init_scale, method.rank, problem.n
    a0 = (s * (math.sqrt(n) + math.sqrt(r))) ** 2
    g0 = float(np.linalg.norm(problem.grad_host(problem.W0), 2))
    return 1.0 / (problem.L * a0 + g0)
