"""Figures: every script runs in quick mode and writes non-empty files; plotted numbers come from
the stored table."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import theory_lab as tl
from theory_lab import plotting as P
from theory_lab.gallery import FIGURES

ROOT = Path(__file__).resolve().parents[1]


def test_every_figure_has_a_script():
    assert {p.stem for p in (ROOT / "figures").glob("*.py")} == set(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_tiny_smoke(name, tmp_path):
    """Every recipe at tiny sizes, in-process: a PDF and a PNG with content (not a blank canvas), and
    for the sweep-based figures a stored table whose plotted metric is finite for every seed (the
    figures' configurations converge; divergence would be a NaN in the plot)."""
    import matplotlib.image as mpimg

    from theory_lab.gallery import make

    make([name], tmp_path / "out", "tiny", tmp_path / "store", echo=lambda *a: None)
    assert (tmp_path / "out" / f"{name}.pdf").stat().st_size > 5000
    img = mpimg.imread(tmp_path / "out" / f"{name}.png")
    assert img.shape[0] > 200 and img.shape[1] > 300 and float(img[..., :3].std()) > 0.05
    stores = list((tmp_path / "store").glob("*.parquet"))
    if name in ("lambda_vs_p",):
        return
    assert stores
    for f in stores:
        table = pd.read_parquet(f)
        col = "test_acc" if name == "mlp_finetune" else "f_gap"
        assert len(table) > 0 and np.isfinite(table[col]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_script_quick_mode_writes_files(name, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "figures" / f"{name}.py"), "--quick", "--out",
                           str(tmp_path / "out"), "--store", str(tmp_path / "store")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for ext in ("pdf", "png"):
        f = tmp_path / "out" / f"{name}.{ext}"
        assert f.is_file() and f.stat().st_size > 5000
    if name != "lambda_vs_p":        # every other figure plots stored sweep data
        assert list((tmp_path / "store").glob("*.parquet"))


def test_plotted_mean_band_and_bound_come_from_the_table(tmp_path):
    store = tmp_path / "s.parquet"
    pr = tl.make_problem("least-squares", m=6, n=9, n_samples=20)
    tl.sweep(pr, "bernoulli-lora-gd", {"p": [0.0, 1.0]}, iters=30, seeds=16, store=store, progress=False)
    table = pd.read_parquet(store)
    with P.style():
        fig, ax = P.new_figure(squeeze=False)
        P.plot_curves(ax[0, 0], P.summarize(table, "f_gap", by=("p",)), "p")
    axis = ax[0, 0]
    solid = [ln for ln in axis.lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in axis.lines if ln.get_linestyle() == "--"]
    sub = table[table.p == 1.0]
    # the mean line at t = 17, recomputed from the stored rows
    mean17 = sub[sub.iteration == 17].f_gap.mean()
    assert solid[1].get_ydata()[17] == pytest.approx(mean17, rel=1e-12)
    # the band's upper edge: two-sided 95% t-interval of the mean over the 16 seeds
    vals = sub[sub.iteration == 17].f_gap.to_numpy()
    upper = vals.mean() + stats.t.ppf(0.975, 15) * vals.std(ddof=1) / 4
    verts = axis.collections[1].get_paths()[0].vertices
    at17 = verts[np.isclose(verts[:, 0], 17)][:, 1]
    assert np.any(np.isclose(at17, upper, rtol=1e-12))
    # the dashed line is the stored bound
    assert dashed[1].get_ydata()[17] == pytest.approx(sub[sub.iteration == 17].bound.iloc[0], rel=1e-12)


def test_log_axis_never_clips_at_a_fixed_epsilon():
    """Exact zeros (coordinate sketches at gamma = 1 hit W* exactly) are left out, not set to 1e-16."""
    t = pd.DataFrame({"config": "a", "p": 0.5, "seed": np.repeat([0, 1], 3), "iteration": np.tile([0, 1, 2], 2),
                      "f_gap": [1.0, 0.5, 0.0, 1.0, 0.3, 0.0], "bound": np.nan})
    with P.style():
        fig, ax = P.new_figure(squeeze=False)
        P.plot_curves(ax[0, 0], P.summarize(t, "f_gap", by=("p",)), "p")
    y = ax[0, 0].lines[0].get_ydata()
    assert list(y) == [1.0, 0.4]
