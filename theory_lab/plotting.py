"""Paper-style figures from result tables (the long tables of ``tl.sweep``).

One style for every figure: vector PDF and PNG, readable fonts, the Okabe-Ito colour-blind-safe
palette, log axes that never clip at a fixed epsilon (non-positive values are left out, and band
edges that reach zero stop at the series' smallest positive value). Every plotted number is computed
here from the table passed in, so a figure can be checked against its stored data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .verify import band, fit_linear_rate

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 7.5, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "lines.linewidth": 1.4, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.25, "legend.frameon": False, "figure.dpi": 150, "savefig.dpi": 200,
    "pdf.fonttype": 42, "axes.prop_cycle": None,
}


def style():
    """A matplotlib rc context with the theory-lab style."""
    import matplotlib as mpl
    from cycler import cycler

    rc = dict(STYLE)
    rc["axes.prop_cycle"] = cycler(color=OKABE_ITO)
    return mpl.rc_context(rc)


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.3, height: float = 2.5, **kw):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             constrained_layout=True, **kw)
    return fig, axes


def save(fig, out_dir, name: str) -> list[Path]:
    """Write NAME.pdf (vector) and NAME.png; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    for p in paths:
        fig.savefig(p)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


# ------------------------------------------------------------------------------ summaries
def summarize(table: pd.DataFrame, metric: str, by=("config",), stat: str = "mean",
              confidence: float = 0.95, x: str = "iteration") -> pd.DataFrame:
    """Per group and x: center (mean or median over seeds), a band, and the stored bound.

    mean: pointwise two-sided t-interval of the mean; median: the 25-75% quantiles across seeds.
    """
    rows = []
    by = list(by)
    for key, g in table.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        wide = g.pivot_table(index="seed", columns=x, values=metric, aggfunc="first")
        X = wide.to_numpy()
        xs = wide.columns.to_numpy()
        if stat == "mean":
            st = band(X, 1 - confidence, 1, two_sided=True, robust=False)      # the plain t-interval, as labelled
            center, low, high = st.mean, st.lcb, st.ucb
        else:
            center = np.median(X, axis=0)
            low, high = np.quantile(X, [0.25, 0.75], axis=0)
        bound = g.groupby(x)["bound"].first().reindex(xs).to_numpy() if "bound" in g else np.full(len(xs), np.nan)
        rows.append(pd.DataFrame({**{b: k for b, k in zip(by, key)}, x: xs, "center": center, "low": low,
                                  "high": high, "bound": bound}))
    return pd.concat(rows, ignore_index=True)


def _positive_floor(*arrays) -> float:
    vals = np.concatenate([np.asarray(a, float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return float(vals.min()) if vals.size else 1.0


def plot_curves(ax, summary: pd.DataFrame, by: str, x: str = "iteration", label=None, bound: bool = True,
                logy: bool = True, colors=None):
    """Center lines with bands, one per value of ``by``; the bound dashed in the same colour."""
    colors = colors or OKABE_ITO
    for i, (val, g) in enumerate(summary.groupby(by, sort=True)):
        c = colors[i % len(colors)]
        xs, y, lo, hi = g[x].to_numpy(), g["center"].to_numpy(), g["low"].to_numpy(), g["high"].to_numpy()
        if logy:
            floor = _positive_floor(y, lo)
            lo = np.where(lo > 0, lo, floor)
            ok = y > 0
        else:
            ok = np.isfinite(y)
        ax.plot(xs[ok], y[ok], color=c, label=label(val) if label else f"{by} = {val}")
        ax.fill_between(xs[ok], lo[ok], hi[ok], color=c, alpha=0.2, linewidth=0)
        if bound and np.isfinite(g["bound"]).any():
            ax.plot(xs, g["bound"].to_numpy(), color=c, linestyle="--", linewidth=1.0)
    if logy:
        ax.set_yscale("log")


def rate_map(table: pd.DataFrame, rows: str = "p", cols: str = "rank", metric: str = "f_gap") -> pd.DataFrame:
    """log(q_hat) / log(q_th) per (rows, cols): > 1 means faster than the bound's rate.

    q_hat is fitted on the mean over seeds (docs/THEORY.md 7.4); q_th is read from the stored bound as
    bound(t+1)/bound(t) at the last checkpoint (exact for the linear-rate theorems).
    """
    out = {}
    for (rv, cv), g in table.groupby([rows, cols]):
        wide = g.pivot_table(index="seed", columns="iteration", values=metric, aggfunc="first")
        q_hat, _ = fit_linear_rate(wide.columns.to_numpy(), wide.to_numpy(), n_boot=0)
        b = g.groupby("iteration")["bound"].first()
        q_th = float(b.iloc[-1] / b.iloc[-2]) if len(b) > 1 and b.iloc[-2] > 0 else np.nan
        out[(rv, cv)] = np.log(q_hat) / np.log(q_th) if 0 < q_th < 1 and q_hat > 0 else np.nan
    s = pd.Series(out)
    s.index.names = [rows, cols]
    return s.unstack(cols)


def plot_heatmap(ax, matrix: pd.DataFrame, label: str, fmt: str = "{:.2f}", cmap: str = "cividis"):
    """Annotated heat map of a (rows x cols) table."""
    im = ax.imshow(matrix.to_numpy(float), aspect="auto", origin="lower", cmap=cmap)
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in matrix.index])
    ax.set_xlabel(matrix.columns.name)
    ax.set_ylabel(matrix.index.name)
    ax.grid(False)
    vals = matrix.to_numpy(float)
    mid = np.nanmean(vals) if np.isfinite(vals).any() else 0
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, fmt.format(vals[i, j]), ha="center", va="center", fontsize=6.5,
                        color="white" if vals[i, j] < mid else "black")
    cb = ax.figure.colorbar(im, ax=ax, shrink=0.9)
    cb.set_label(label)
    return im
