"""Benchmark: a user objective written in torch (gradient by autograd) against the same objective in
numpy with a hand-written gradient, run by theory-lab at 64 x 64, S = 64 seeds (issue 17's target:
autograd at most 2x the hand-written numpy gradient).

    python sweeps/bench_autograd.py [--iters 200] [--seeds 64] [--size 64] [--repeat 3]

Objectives (N = 2 x size samples): least squares f(W) = (1/2) ||X W - Y||^2; softmax regression
f(W) = mean_i [logsumexp(x_i W) - (x_i W)_{y_i}] + (nu/2) ||W||^2 (nonlinear); and least squares as a
finite sum run by minibatch SGD (per-sample gradients by autograd). Each run is ``tl.run`` of
Bernoulli-LoRA (rank 4) on the numpy backend; a warm-up run first, then the best of ``repeat``
(time per step). Both objectives are checked to give the same gradient (to 1e-10) first.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def objectives(size: int, seed: int = 0):
    import torch

    m = n = size
    N = 2 * size
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, m)) / np.sqrt(N)
    Y = rng.standard_normal((N, n))
    labels = rng.integers(0, n, N)
    onehot = np.eye(n)[labels]
    Xt, Yt, lt = torch.as_tensor(X), torch.as_tensor(Y), torch.as_tensor(labels)
    nu = 0.1

    def lsq_np(W):
        R = X @ W - Y
        return 0.5 * np.sum(R * R, axis=(1, 2))

    def lsq_grad(W):
        return X.T @ (X @ W - Y)

    def lsq_t(W):
        R = Xt @ W - Yt
        return 0.5 * (R * R).sum(dim=(1, 2))

    def soft_np(W):
        Z = X @ W
        top = Z.max(axis=2, keepdims=True)
        lse = np.log(np.exp(Z - top).sum(axis=2)) + top[..., 0]
        return (lse - Z[:, np.arange(N), labels]).mean(axis=1) + 0.5 * nu * np.sum(W * W, axis=(1, 2))

    def soft_grad(W):
        Z = X @ W
        P = np.exp(Z - Z.max(axis=2, keepdims=True))
        P /= P.sum(axis=2, keepdims=True)
        return X.T @ (P - onehot) / N + nu * W

    def soft_t(W):
        Z = Xt @ W
        return (torch.logsumexp(Z, dim=2) - Z[:, torch.arange(N), lt]).mean(dim=1) + 0.5 * nu * (W * W).sum(dim=(1, 2))

    def fi_np(W, idx):
        R = np.einsum("sbm,smn->sbn", X[idx], W) - Y[idx]
        return 0.5 * N * np.sum(R * R, axis=2)

    def gi_np(W, idx):
        Xi = X[idx]
        R = np.einsum("sbm,smn->sbn", Xi, W) - Y[idx]
        return N * np.einsum("sbm,sbn->sbmn", Xi, R)

    def fi_t(W, idx):
        R = torch.einsum("sbm,smn->sbn", Xt[idx], W) - Yt[idx]
        return 0.5 * N * (R * R).sum(dim=2)

    L = float(np.linalg.eigvalsh(X.T @ X).max())
    return dict(N=N, L=L, lsq=(lsq_np, lsq_grad, lsq_t), softmax=(soft_np, soft_grad, soft_t),
                finite=(fi_np, gi_np, fi_t), L_soft=L / 2 + nu)


def main(argv=None) -> None:
    import theory_lab as tl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    ob = objectives(a.size)
    shape, N, L = (a.size, a.size), ob["N"], ob["L"]
    cases = []
    for name, (f_np, g_np, f_t), Lc in (("least squares", ob["lsq"], L), ("softmax regression", ob["softmax"],
                                                                           ob["L_soft"])):
        cases.append((f"{name}, GD", tl.Method("bernoulli-lora-gd", rank=4),
                      tl.custom_problem(f_np, grad=g_np, shape=shape, L=Lc),
                      tl.custom_problem(f_t, shape=shape, L=Lc)))
    fi_np, gi_np, fi_t = ob["finite"]
    sums = dict(n=N, L_max=L * N, delta_inf=1.0)
    f_np, g_np, f_t = ob["lsq"]
    cases.append(("least squares finite sum, SGD b=4", tl.Method("bernoulli-lora-sgd", rank=4, batch=4, stepsize=1e-3),
                  tl.custom_problem(f_np, grad=g_np, shape=shape, L=L, finite_sum=dict(f_i=fi_np, grad_i=gi_np, **sums)),
                  tl.custom_problem(f_t, shape=shape, L=L, finite_sum=dict(f_i=fi_t, **sums))))
    W = np.random.default_rng(1).standard_normal((3,) + shape)
    print(f"m = n = {a.size}, S = {a.seeds}, {a.iters} steps, best of {a.repeat} after a warm-up; seconds per step")
    print(f"{'objective':38s} {'numpy+grad':>11s} {'torch autograd':>15s} {'ratio':>6s}")
    for name, method, pn, pt in cases:
        pn_, pt_ = pn.bind("numpy"), pt.bind("numpy")
        err = np.max(np.abs(pn_.grad(W) - pt_.grad(W))) / np.max(np.abs(pn_.grad(W)))
        assert err < 1e-10, (name, err)
        times = {}
        for label, pr in (("numpy", pn), ("torch", pt)):
            tl.run(pr, method, iters=5, seeds=a.seeds)                   # warm-up (imports, allocations)
            best = np.inf
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                tl.run(pr, method, iters=a.iters, seeds=a.seeds)
                best = min(best, (time.perf_counter() - t0) / a.iters)
            times[label] = best
        print(f"{name:38s} {times['numpy'] * 1e3:9.2f}ms {times['torch'] * 1e3:13.2f}ms "
              f"{times['torch'] / times['numpy']:6.2f}")


if __name__ == "__main__":
    main()
