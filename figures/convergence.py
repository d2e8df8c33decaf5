"""The 'convergence' figure: see theory_lab.gallery.convergence. python figures/convergence.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("convergence")
