"""The 'lambda_vs_p' figure: see theory_lab.gallery.lambda_vs_p. python figures/lambda_vs_p.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("lambda_vs_p")
