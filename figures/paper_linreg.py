"""The 'paper_linreg' figure: see theory_lab.gallery.paper_linreg. python figures/paper_linreg.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("paper_linreg")
