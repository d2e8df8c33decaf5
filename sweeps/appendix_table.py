"""Every registered theorem checked on an instance of its class (docs/THEORY.md Appendix A settings):
prints a Markdown table of measured value, bound, ratio and verdict (the README quotes it).

python sweeps/appendix_table.py [--seeds-scale 1.0]
"""
import argparse
import time
from pathlib import Path

import theory_lab as tl

ROOT = Path(__file__).resolve().parents[1] / "problems"
M = tl.Method


def instances():
    lsq = tl.load_problem(ROOT / "appendix_lsq.toml")
    kron = tl.load_problem(ROOT / "appendix_kron.toml")
    ncreg = tl.load_problem(ROOT / "appendix_ncreg.toml")
    iso = tl.load_problem(ROOT / "appendix_iso.toml")
    shards = tl.make_problem("least-squares", m=8, n=12, n_samples=40, clients=4)
    logit = tl.make_problem("softmax-regression", m=8, n=12, n_samples=60)
    logit_nc = tl.make_problem("softmax-regression", m=8, n=12, n_samples=60, reg="noncvx")
    l1 = tl.make_problem("l1-regression", m=8, n=12, n_samples=40)
    cex = tl.make_problem("lora-counterexample")
    st = dict(sketch="stratified", left_groups=[2, 6], right_groups=[3, 9])
    return [
        ("GD-NC", "ncreg, G, p=0.5", ncreg, M("bernoulli-lora-gd", p=0.5, rank=2), 300, 2000),
        ("GD-NC", "ncreg, St, p=0.5, 1.5/L", ncreg, M("bernoulli-lora-gd", p=0.5, rank=2, factor=1.5, **st), 300, 2000),
        ("GD-PL", "lsq, G, p=0.5", lsq, M("bernoulli-lora-gd", p=0.5, rank=2), 150, 2000),
        ("GD-PL", "cex 3x3, r=1, G, p=0.5", cex, M("bernoulli-lora-gd", p=0.5, rank=1), 100, 2000),
        ("SGD-NC", "kron + N1 s=0.3, G, 0.3/L", kron, M("bernoulli-lora-sgd", p=0.5, rank=2, noise_std=0.3, factor=0.3), 300, 2000),
        ("SGD-NC", "lsq + N3 b=4, G, p=1", lsq, M("bernoulli-lora-sgd", p=1, rank=2, batch=4), 300, 2000),
        ("SGD-PL", "kron + N1, G, p=0.5", kron, M("bernoulli-lora-sgd", p=0.5, rank=2, noise_std=0.3), 300, 2000),
        ("SGD-PL", "lsq + N2 b=1, G, p=0", lsq, M("bernoulli-lora-sgd", p=0, rank=2, batch=1, replacement=True), 300, 2000),
        ("QGD-NC", "kron, RandK24, G, p=0.5", kron, M("bernoulli-lora-qgd", p=0.5, rank=2, k=24), 300, 1000),
        ("QGD-PL", "shards M=4, RandK24, G, p=0", shards, M("bernoulli-lora-qgd", p=0, rank=2, k=24), 300, 1000),
        ("PAGE-NC", "lsq, b=4, G, p=0.5", lsq, M("bernoulli-lora-page", p=0.5, rank=2, batch=4), 400, 1000),
        ("PAGE-PL", "lsq, b=1, St, p=0", lsq, M("bernoulli-lora-page", p=0, rank=2, batch=1, **st), 100, 1000),
        ("MVR-NC", "kron + shared N1, a=0.1, p=0", kron,
         M("bernoulli-lora-mvr", p=0, rank=2, momentum=0.1, noise="additive", noise_std=0.3), 300, 1000),
        ("MVR-NC", "softmax ncreg, a=0.1, p=1", logit_nc, M("bernoulli-lora-mvr", p=1, rank=2, momentum=0.1), 400, 1000),
        ("MVR-PL", "kron + shared N1, a=0.1, p=1", kron,
         M("bernoulli-lora-mvr", p=1, rank=2, momentum=0.1, noise="additive", noise_std=0.3), 300, 1000),
        ("MVR-PL", "softmax l2, a=0.1, St, p=0", logit, M("bernoulli-lora-mvr", p=0, rank=2, momentum=0.1, **st), 50, 1000),
        ("MARINA-NC", "shards, RandK24, G, p=0", shards, M("bernoulli-lora-marina", p=0, rank=2, k=24), 300, 1000),
        ("MARINA-PL", "shards, RandK8, St, p=0", shards, M("bernoulli-lora-marina", p=0, rank=2, k=8, **st), 100, 1000),
        ("EF21-NC", "shards, Top24, G, p=0", shards, M("bernoulli-lora-ef21", p=0, rank=2, k=24), 300, 1000),
        ("EF21-PL", "shards, Top8, St, p=0", shards, M("bernoulli-lora-ef21", p=0, rank=2, k=8, **st), 100, 1000),
        ("NS-CONST", "l1, G, p=0, gamma*/3", l1, M("bernoulli-lora-subgd", p=0, rank=2, factor=1 / 3), 500, 1000),
        ("NS-POLYAK", "l1, St, p=0.5", l1, M("bernoulli-lora-subgd", p=0.5, rank=2, stepsize="polyak", **st), 500, 1000),
        ("EXACT-ISO", "iso, G, p=0.3, gamma=1, T=20", iso, M("bernoulli-lora-gd", p=0.3, rank=2), 20, 20000),
        ("EXACT-ISO-SGD", "iso + N1 s=0.3, G, p=0.5", iso, M("bernoulli-lora-sgd", p=0.5, rank=2, noise_std=0.3), 60, 4000),
        ("IDENT-NS-POLYAK", "l1, G, p=0.5, T=200", l1, M("bernoulli-lora-subgd", p=0.5, rank=2, stepsize="polyak"), 200, 4000),
        ("IDENT-NS-CONST", "l1, G, p=0.5, gamma=0.05", l1, M("bernoulli-lora-subgd", p=0.5, rank=2, stepsize=0.05), 200, 4000),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds-scale", type=float, default=1.0)
    a = ap.parse_args()
    print("| ID | instance | T | seeds | measured | bound | ratio | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    t0 = time.time()
    for tid, label, pr, me, T, S in instances():
        r = tl.check(pr, me, iters=T, seeds=max(10, int(S * a.seeds_scale)), theorem=tid, seed=1)
        print(f"| {tid} | {label} | {T} | {max(10, int(S * a.seeds_scale))} | {r.measured:.4g} | {r.bound:.4g} | "
              f"{r.tightness:.3f} | {r.verdict} |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
