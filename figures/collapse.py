"""Make the 'collapse' figure (see theory_lab.gallery.collapse for what it shows).

python figures/collapse.py [--quick] [--out figures/out] [--store results/figures]
"""
import argparse

from theory_lab.gallery import make

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="figures/out")
    ap.add_argument("--store", default="results/figures")
    a = ap.parse_args()
    make(["collapse"], a.out, a.quick, a.store)
