"""Time the pieces of one engine step on CUDA (diagnostic for the bench ratios):
python3 sweeps/gpu_profile_step.py  -> prints median ms per piece for the two target configurations."""
import time

import numpy as np
import torch

from theory_lab.backend import get_backend
from theory_lab.backend.random import Streams
from theory_lab.methods import Method
from theory_lab.sketches import orthonormal_basis


def t(fn, k=20):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(k):
        torch.cuda.synchronize(); t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


for m, r, S in [(4096, 16, 8), (1024, 8, 64), (256, 8, 64)]:
    bk = get_backend("torch", "cuda", "float32")
    xp = bk.xp
    Sigma = torch.randn(m, m, device="cuda"); Sigma = Sigma @ Sigma.T / m
    W = torch.randn(S, m, m, device="cuda"); negC = torch.randn(m, m, device="cuda")
    G = torch.randn(S, m, m, device="cuda")
    st = Streams(bk, 0, np.arange(S))
    me = Method("bernoulli-lora-gd", p=0.5, rank=r)
    F = st.normal("sketch", 0, (m, r))
    Q = orthonormal_basis(F, xp)
    outer = torch.randn(S, m, 2 * r, device="cuda"); inner = torch.randn(S, 2 * r, m, device="cuda")
    res = {
        "Sigma@W": t(lambda: Sigma @ W),
        "Sigma@W - C": t(lambda: Sigma @ W + negC),
        "baddbmm grad": t(lambda: bk.matmul_add(Sigma, W, negC)),
        "normal (m,r)": t(lambda: st.normal("sketch", 3, (m, r))),
        "uniform coin": t(lambda: st.uniform("coin", 3)),
        "cholqr2": t(lambda: orthonormal_basis(F, xp)),
        "householder qr": t(lambda: xp.linalg.qr(F).Q),
        "G@Q and Q^T G": t(lambda: (G @ Q, Q.mT @ G)),
        "outer@inner + W": t(lambda: outer @ inner + W),
        "baddbmm update": t(lambda: torch.baddbmm(W, outer, inner)),
        "method.step": t(lambda: me.spec.rule.step(me, W, G, 0.1, 3, st, None)),
        "full step": t(lambda: me.step(W, bk.matmul_add(Sigma, W, negC), 0.1, 3, st)),
    }
    print(f"m=n={m} r={r} S={S}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))
