"""torch CPU float64 against numpy float64, whole runs (tl.run), timed in one process.

python sweeps/bench_cpu_backends.py   -> a table of seconds and the torch/numpy ratio per size.
"""
import time

import numpy as np

import theory_lab as tl

CASES = [(8, 1024, 200), (32, 256, 200), (64, 64, 200), (128, 16, 100), (256, 8, 50)]


def timed(pr, me, backend, T, S):
    tl.run(pr, me, iters=3, seeds=S, backend=backend)            # warm-up
    t0 = time.perf_counter()
    res = tl.run(pr, me, iters=T, seeds=S, backend=backend, metrics=("f_gap", "grad_sq", "avg_grad_sq"))
    return time.perf_counter() - t0, res


def main():
    print(f"{'m=n':>5} {'S':>5} {'T':>4} {'numpy s':>9} {'torch s':>9} {'torch/numpy':>12} {'max rel diff':>13}")
    for m, S, T in CASES:
        pr = tl.make_problem("least-squares", m=m, n=m, n_samples=2 * m)
        me = tl.Method("bernoulli-lora-gd", p=0.5, rank=max(1, m // 16))
        tn, rn = timed(pr, me, "numpy", T, S)
        tt, rt = timed(pr, me, "torch", T, S)
        a, b = rn.metric("f_gap"), rt.metric("f_gap")
        diff = np.max(np.abs(a - b) / (np.abs(a) + np.sqrt(np.abs(a) * np.abs(a[:, :1])) + 1e-300))
        print(f"{m:5d} {S:5d} {T:4d} {tn:9.3f} {tt:9.3f} {tt / tn:12.2f} {diff:13.2e}")


if __name__ == "__main__":
    main()
