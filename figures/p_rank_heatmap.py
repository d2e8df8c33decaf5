"""The 'p_rank_heatmap' figure: see theory_lab.gallery.p_rank_heatmap. python figures/p_rank_heatmap.py [--quick] [--out DIR]"""
from theory_lab.gallery import script_main

if __name__ == "__main__":
    script_main("p_rank_heatmap")
