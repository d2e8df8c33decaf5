"""A sweep from a script: p x rank for GD on least squares, then the mean fitted rate per point.

python sweeps/p_rank_script.py [--workers 2]
"""
import argparse

import theory_lab as tl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="results/p_rank_script.parquet")
    a = ap.parse_args()
    problem = tl.make_problem("least-squares", m=16, n=48, n_samples=96)
    method = tl.Method("bernoulli-lora-gd", sketch="gaussian")
    table = tl.sweep(problem, method, grid={"p": [0.0, 0.5, 1.0], "rank": [1, 2, 4]}, iters=300, seeds=64,
                     store=a.out, workers=a.workers)
    final = table[table.iteration == table.iteration.max()]
    summary = final.groupby(["p", "rank"]).agg(mean_f_gap=("f_gap", "mean"), bound=("bound", "first"),
                                               lam_min=("lam_min", "first"), verdict=("verdict", "first"))
    print(summary.to_string())
    print(f"computed {table.attrs['computed']}, cached {table.attrs['cached']} -> {a.out}")


if __name__ == "__main__":
    main()
