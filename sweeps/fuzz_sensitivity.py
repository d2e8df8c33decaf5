"""Does the falsification search find wrong bounds? Mutant campaigns (issue 18).

For every registered UPPER theorem a copy with its bound x 0.9 at t > 0, and for every PL rate theorem
a copy whose contraction is 11% faster (q^t -> q^(1.11 t) inside the bound), each fuzzed for
``--budget`` seconds (default 45) as a user theorem would be. A mutant is caught when a configuration's
``violated`` verdict persists at 4x the seeds and a fresh master seed (the fuzz re-check); for the
rate mutants the report also says whether a catch was decided past the first tenth of the run (the
rate, not the first step).

    python sweeps/fuzz_sensitivity.py [--budget 45] [--seed 0] [--jobs 2] [--only ID ...]

Campaigns run ``--jobs`` at a time, one process each (so two campaigns on two cores).
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def mutant(tid: str, mode: str):
    """``scale``: the bound x 0.9 for t > 0; ``rate``: t -> 1.11 t inside the bound."""
    import theory_lab as tl

    th = tl.THEOREMS[tid]
    if mode == "scale":
        def bound(t, c, _b=th.bound):
            t = np.asarray(t, float)
            return np.where(t > 0, 0.9, 1.0) * np.asarray(_b(t, c), float)
    else:
        def bound(t, c, _b=th.bound):
            return _b(1.11 * np.asarray(t, float), c)
    return dataclasses.replace(th, id=f"{tid}~{mode}", bound=bound, provenance="mutant")


def campaign(args) -> dict:
    tid, mode, budget, seed = args
    import theory_lab as tl

    th = mutant(tid, mode)
    t0 = time.monotonic()
    table = tl.fuzz([th], budget=budget, seed=seed)
    out = dict(theorem=tid, mode=mode, configurations=len(table), seconds=time.monotonic() - t0, caught=0,
               late=0, first="")
    if len(table):
        hit = table[table.persisting & (table.verdict == "violated")]
        out["caught"] = len(hit)
        if len(hit):
            frac = hit.decided_at.astype(float) / hit.iters.astype(float)
            out["late"] = int((frac >= 0.1).sum())
            out["first"] = hit.iloc[0].python
    return out


def main(argv=None) -> None:
    import multiprocessing as mp

    import theory_lab as tl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=45.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args(argv)
    jobs = []
    for tid, th in tl.THEOREMS.items():
        if a.only and tid not in a.only:
            continue
        if th.kind == "UPPER":
            jobs.append((tid, "scale", a.budget, a.seed))
        if th.kind == "UPPER" and th.rate is not None and th.needs_pl:
            jobs.append((tid, "rate", a.budget, a.seed))
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        rows = pool.map(campaign, jobs, chunksize=1)
    print(f"{'mutant':22s} {'configs':>7s} {'caught':>6s} {'late':>5s}")
    for r in rows:
        print(f"{r['theorem'] + ' ' + r['mode']:22s} {r['configurations']:7d} {r['caught']:6d} {r['late']:5d}")
    scale = [r for r in rows if r["mode"] == "scale"]
    rate = [r for r in rows if r["mode"] == "rate"]
    print(f"x0.9 mutants caught: {sum(r['caught'] > 0 for r in scale)} of {len(scale)}; "
          f"11%-faster-rate mutants caught: {sum(r['caught'] > 0 for r in rate)} of {len(rate)}, "
          f"with a catch past the first tenth: {sum(r['late'] > 0 for r in rate)} of {len(rate)}")


if __name__ == "__main__":
    main()
