"""The 'collapse' figure: see theory_lab.gallery.collapse. python figures/collapse.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("collapse")
