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


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.3, height: float = 2.5, squeeze: bool = True, **kw):
    """A figure of ``nrows`` x ``ncols`` panels, each ``width`` x ``height`` inches, laid out by
    matplotlib's constrained layout (``kw`` goes to ``plt.subplots``). Returns ``(fig, axes)``: with
    ``squeeze`` (default) one Axes for a single panel and a 1-D array for one row or column, as
    ``plt.subplots`` does; ``squeeze=False`` always gives the (nrows, ncols) array."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=squeeze,
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
    out = pd.concat(rows, ignore_index=True)
    out.attrs["metric"] = metric
    return out


def _positive_floor(*arrays) -> float:
    vals = np.concatenate([np.asarray(a, float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return float(vals.min()) if vals.size else 1.0


def _label(label, by: str, value) -> str:
    if label is None:
        return f"{by} = {value:g}" if isinstance(value, (int, float, np.number)) else f"{by} = {value}"
    if callable(label):
        return str(label(value))
    return str(label).format(value, value=value)


def plot_curves(ax, summary: pd.DataFrame, by: str, x: str = "iteration", label=None, bound: bool = True,
                logy: bool = True, colors=None, xlabel: str | None = None, ylabel: str | None = None,
                legend: bool = True):
    """Draw one centre line with its band per value of ``by`` (a :func:`summarize` table), and the
    stored bound dashed in the same colour.

    Parameters
    ----------
    ax : the matplotlib Axes to draw on
    summary : the output of :func:`summarize` (columns ``by``, ``x``, center, low, high, bound)
    by : the column whose values get one line each
    x : the horizontal column (default "iteration")
    label : the legend text per value: None gives "BY = VALUE", a format string such as "p = {}" or
        "rank {value}", or a function of the value
    bound : also draw the bound (dashed, labelled once as "bound")
    logy : logarithmic vertical axis (non-positive values are left out)
    colors : line colours (default the Okabe-Ito palette)
    xlabel, ylabel : axis labels (default ``x`` and the summarised metric's name)
    legend : draw a legend
    """
    colors = colors or OKABE_ITO
    drew_bound = False
    for i, (val, g) in enumerate(summary.groupby(by, sort=True)):
        c = colors[i % len(colors)]
        xs, y, lo, hi = g[x].to_numpy(), g["center"].to_numpy(), g["low"].to_numpy(), g["high"].to_numpy()
        if logy:
            floor = _positive_floor(y, lo)
            lo = np.where(lo > 0, lo, floor)
            ok = y > 0
        else:
            ok = np.isfinite(y)
        ax.plot(xs[ok], y[ok], color=c, label=_label(label, by, val))
        ax.fill_between(xs[ok], lo[ok], hi[ok], color=c, alpha=0.2, linewidth=0)
        if bound and np.isfinite(g["bound"]).any():
            ax.plot(xs, g["bound"].to_numpy(), color=c, linestyle="--", linewidth=1.0,
                    label=None if drew_bound else "bound (dashed)")
            drew_bound = True
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or summary.attrs.get("metric", "value"))
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()


#: what the summary columns plotted by :func:`plot_sweep` mean (axis labels)
SUMMARY_LABELS = {
    "rate": "per-step rate q (theory dashed)", "rate_theory": "theoretical rate q_th",
    "slack": "rate slack log q / log q_th", "slack_lam": "slack from lam_bar / lam_min",
    "slack_mu": "slack from mu_path / mu", "slack_other": "other slack (stepsize, estimator)",
    "tightness": "measured / bound at T", "max_tightness": "max measured / bound (t > 0)",
    "late_tightness": "max measured / bound past T/10", "measured": "measured mean at T", "bound": "bound at T",
}


def plot_sweep(data, x: str, y: str = "rate", hue: str | None = None, ax=None, confidence: float = 0.95,
               logy: bool | None = None, label=None):
    """Any sweep in the paper style: ``y`` against ``x``, one line per value of ``hue``.

    ``data``: a sweep's long table (``tl.sweep`` or a store) or its :func:`theory_lab.summarise`.
    ``y``: a summary column (rate, slack, slack_lam, slack_mu, slack_other, tightness, late_tightness,
    measured, bound, ...): lines over the configurations, the fitted rate with its bootstrap band and
    the theoretical rate dashed; or a metric of the long table (f_gap, grad_sq, ...) with
    ``x="iteration"``: mean curves with t-bands and the bound dashed. Every other column must be
    constant (filter the table first). Returns ``(fig, ax)``."""
    from .errors import InputError
    from .summary import summarise

    long = "seed" in getattr(data, "columns", ())
    if ax is None:
        fig, ax = new_figure(width=4.4, height=2.8)
    else:
        fig = ax.figure
    if long and x == "iteration":
        if y not in data.columns:
            raise InputError("y", f"{y!r} is not a column of this table; accepted: a metric "
                             f"({', '.join(c for c in data.columns if c in _METRICS)})")
        by = hue or "config"
        _single(data, [by, "iteration", "seed"], x="iteration")
        plot_curves(ax, summarize(data, y, by=(by,), confidence=confidence), by, label=label,
                    logy=True if logy is None else logy, ylabel=y)
        return fig, ax
    table = summarise(data, confidence) if long else data
    for name, what in (("x", x), ("y", y), ("hue", hue)):
        if what is not None and what not in table.columns:
            raise InputError(name, f"{what!r} is not a column of the sweep's summary; accepted: "
                             f"{', '.join(c for c in table.columns if c != 'config')}")
    _single(table, [x] + ([hue] if hue else []), x=x)
    groups = table.groupby(hue, sort=True) if hue else [(None, table)]
    for i, (val, g) in enumerate(groups):
        c = OKABE_ITO[i % len(OKABE_ITO)]
        g = g.sort_values(x)
        xs, ys = g[x].to_numpy(), g[y].to_numpy(dtype=float)
        text = (_label(label, hue, val) if label is not None else f"{val:g}" if isinstance(val, (int, float, np.number))
                else str(val)) if hue else y
        ax.plot(xs, ys, marker="o", markersize=3, color=c, label=text)
        if y == "rate" and {"rate_low", "rate_high"} <= set(g.columns):
            ax.fill_between(xs, g["rate_low"].to_numpy(float), g["rate_high"].to_numpy(float), color=c, alpha=0.2,
                            linewidth=0)
        if y == "rate" and "rate_theory" in g.columns:
            ax.plot(xs, g["rate_theory"].to_numpy(float), color=c, linestyle="--", linewidth=1.0,
                    label="theory (dashed)" if i == 0 else None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(SUMMARY_LABELS.get(y, y))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=hue, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig, ax


_METRICS = ("f_gap", "grad_sq", "avg_grad_sq", "wavg_grad_sq", "dist_sq", "est_error", "lyapunov", "avg_f_gap",
            "polyak_sum", "min_f_gap", "epochs", "bits")


def _single(table: pd.DataFrame, keep: list[str], x: str) -> None:
    """InputError unless every parameter besides ``keep`` is constant (one line per hue and x)."""
    from .errors import InputError
    from .summary import RESULT_COLUMNS, ROW_COLUMNS

    skip = set(keep) | set(ROW_COLUMNS) | set(RESULT_COLUMNS) | set(_METRICS) | {
        "measured", "tightness", "max_tightness", "late_tightness", "rate", "rate_low", "rate_high", "slack",
        "slack_lam", "slack_mu", "slack_other", "metric", "gamma", "master_seed"}
    extra = [c for c in table.columns if c not in skip and table[c].astype(str).nunique() > 1]
    if extra:
        raise InputError("hue", f"the sweep also varies {', '.join(extra)}: give one of them as the hue, or "
                         "filter the table to one value first")


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
