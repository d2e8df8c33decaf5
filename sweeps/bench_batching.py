"""Configuration batching: a p x factor grid swept one configuration at a time vs batched.

Regime (issue 10's benchmark): least squares m = n = 16, Bernoulli-LoRA-GD, rank 2, a 48-point
grid (8 values of p x 6 stepsize factors), 8 seeds, 300 steps, numpy float64, one process.
Both sweeps run in this one run (batched first and last, the median taken, so neither gets a warm
cache the other lacks); the script checks that every configuration's per-seed numbers agree to
1e-12 relative and prints the ratio the README quotes.

    python sweeps/bench_batching.py [--m 16] [--seeds 8] [--iters 300] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import theory_lab as tl


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    problem = tl.make_problem("least-squares", m=a.m, n=a.m)
    grid = {"p": [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.99], "factor": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]}
    kw = dict(iters=a.iters, seeds=a.seeds, progress=False, method_params={"rank": 2})
    times = {True: [], False: []}
    tables = {}
    for _ in range(a.repeat):
        for batch in (True, False, True):
            t0 = time.perf_counter()
            tables[batch] = tl.sweep(problem, "bernoulli-lora-gd", grid, batch=batch, **kw)
            times[batch].append(time.perf_counter() - t0)
    one, many = tables[False], tables[True]
    cols = ["f_gap", "grad_sq", "avg_grad_sq"]
    rel = np.max(np.abs(one[cols].to_numpy() - many[cols].to_numpy()) /
                 np.maximum(np.abs(one[cols].to_numpy()), 1e-300))
    solo, batched = np.median(times[False]), np.median(times[True])
    print(f"grid: {len(one['config'].unique())} configurations x {a.seeds} seeds x {a.iters} steps, "
          f"least squares {a.m}x{a.m}, rank 2")
    print(f"one configuration at a time: {solo:.2f} s   batched: {batched:.2f} s   ratio {solo / batched:.1f}x "
          f"(median of {a.repeat} / {2 * a.repeat} runs)")
    print(f"largest relative difference of per-seed numbers: {rel:.1e}")
    if not rel <= 1e-12:
        raise SystemExit("batched numbers differ from one-at-a-time numbers")


if __name__ == "__main__":
    main()
