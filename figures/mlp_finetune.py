"""The 'mlp_finetune' figure: see theory_lab.gallery.mlp_finetune. python figures/mlp_finetune.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("mlp_finetune")
