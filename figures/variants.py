"""The 'variants' figure: see theory_lab.gallery.variants. python figures/variants.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("variants")
