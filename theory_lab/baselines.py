"""LoRA baselines that train factors rather than take projected steps (THEORY.md 3(g)).

* ``lora`` (joint LoRA): W = W0 + B A with B^0 = 0, A^0 ~ N(0, s^2) (``init_scale`` s), simultaneous
  GD on both factors, B <- B - gamma grad f(W) A^T, A <- A - gamma B^T grad f(W). The LoRA scale
  alpha/r is folded into gamma. Not L-smooth in (B, A): whether it diverges depends on s.
* ``cola`` (Chain of LoRA): the same joint training restarted every ``link_steps`` steps: merge B A
  into W, re-zero B, resample A (one chain link per restart).

``asymm-lora`` (one random factor frozen for the whole run, the other trained) is a projected step
with a sketch drawn once; it lives in :mod:`theory_lab.methods`.
"""
from __future__ import annotations


class JointFactors:
    """Per-run state of joint LoRA / CoLA for all seeds: W = base + B A, B (S, m, r), A (S, r, n)."""

    def __init__(self, W, rank: int, init_scale: float, streams, link_steps: int | None = None):
        xp = streams.backend.xp
        S, m, n = W.shape
        self.rank, self.init_scale, self.link_steps = rank, init_scale, link_steps
        self.base = W
        self.B = streams.backend.zeros((S, m, rank))
        self.A = init_scale * streams.normal("init", 0, (rank, n))
        self.xp = xp

    def step(self, W, G, gamma, t: int, streams):
        if self.link_steps and t > 0 and t % self.link_steps == 0:      # a new chain link
            self.base = W
            self.B = self.B * 0.0
            self.A = self.init_scale * streams.normal("init", t, tuple(self.A.shape[1:]))
        B, A = self.B, self.A
        self.B = B - gamma * (G @ A.mT)
        self.A = A - gamma * (B.mT @ G)
        return self.base + self.B @ self.A
