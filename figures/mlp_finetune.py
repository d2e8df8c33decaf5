"""Make the 'mlp_finetune' figure (see theory_lab.gallery.mlp_finetune for what it shows).

python figures/mlp_finetune.py [--quick] [--out figures/out] [--store results/figures]
"""
import argparse

from theory_lab.gallery import make

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="figures/out")
    ap.add_argument("--store", default="results/figures")
    a = ap.parse_args()
    make(["mlp_finetune"], a.out, a.quick, a.store)
