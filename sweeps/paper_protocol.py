"""The paper's own protocol at its size (docs/EXPERIMENTS.md E1/E2: W 64x64, N = 10,000, make_regression),
timed as a user runs it: each case in a fresh process, start-up (imports, loading the cached problem,
planning) included, and the loop alone.

Cases: Bernoulli-LoRA-GD r = 2, p = 0.5 with 20 seeds x 100 steps and 1 seed x 1,000 steps;
Bernoulli-LoRA-SGD and -PAGE with b = 100 (without replacement), 20 seeds x 100 steps. Every
metric is recorded at every step (the full gradient and f - f_lb included), as ``tl.run`` does.
The authors' published script took 50.0 s, 29.3 s, 64.6 s (GD 20 seeds, GD 1 seed, SGD) on the
same 2-core machine class (issue 10's measurements); their ratio is printed against those.
Run once first so the problem is in the cache (``theory-lab`` builds it in minutes the first time).

    python sweeps/paper_protocol.py [--backend numpy] [--device cpu]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = [("GD", "bernoulli-lora-gd", {}, 20, 100, 50.0), ("GD", "bernoulli-lora-gd", {}, 1, 1000, 29.3),
         ("SGD", "bernoulli-lora-sgd", {"batch": 100}, 20, 100, 64.6),
         ("PAGE", "bernoulli-lora-page", {"batch": 100}, 20, 100, None)]

CHILD = """
import sys, time
t0 = time.perf_counter()
import theory_lab as tl
r = tl.run("problems/paper_linreg.toml", tl.Method({method!r}, p=0.5, rank=2, **{extra!r}), iters={iters},
           seeds={seeds}, backend={backend!r}, device={device!r})
print(r.seconds, time.perf_counter() - t0)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    print(f"{'case':6s} {'seeds':>5s} {'steps':>6s} {'process s':>9s} {'loop s':>7s} {'ms/seed-step':>12s} "
          f"{'(loop)':>7s} {'authors s':>9s} {'ratio':>6s}")
    for name, method, extra, seeds, iters, authors in CASES:
        code = CHILD.format(method=method, extra=extra, iters=iters, seeds=seeds, backend=a.backend,
                            device=a.device)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        loop = float(out.stdout.split()[0])
        per = 1e3 * wall / (seeds * iters)
        ratio = f"{authors / wall:6.1f}" if authors else "     -"
        print(f"{name:6s} {seeds:5d} {iters:6d} {wall:9.2f} {loop:7.2f} {per:12.3f} "
              f"{1e3 * loop / (seeds * iters):7.3f} {authors or float('nan'):9.1f} {ratio}")


if __name__ == "__main__":
    main()
